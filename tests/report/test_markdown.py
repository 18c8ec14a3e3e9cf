"""report.md and the number format: costs once per method (combined costs nothing), every dash explained
under its table, significant digits instead of long fixed-point numbers."""

from __future__ import annotations

import json

import pytest
from _paths import ROOT

from wdrobust.report import Results
from wdrobust.report.markdown import render_markdown
from wdrobust.report.numbers import number, seconds

DEMO = ROOT / "docs" / "demo" / "results.json"


@pytest.mark.parametrize(
    ("value", "text"),
    [(1e21, "1e+21"), (123456.0, "1.235e+05"), (0.5, "0.5"), (-7.17654, "-7.177"), (1.2e-7, "1.2e-07"),
     (None, "—"), (float("inf"), "inf"), (float("nan"), "nan")],
)  # fmt: skip
def test_numbers_have_significant_digits(value, text):
    assert number(value) == text


def test_seconds_keep_three_digits():
    assert (seconds(20.709), seconds(0.0072811), seconds(1234.5)) == ("20.7", "0.00728", "1.23e+03")


@pytest.fixture(scope="module")
def report() -> str:
    return render_markdown(Results.from_dict(json.loads(DEMO.read_text())), [])


def _section(text: str, title: str) -> list[str]:
    lines = text.split(f"{title}\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0].splitlines()
    return [line for line in lines if line]


def test_certificate_seconds_appear_once_and_combined_costs_nothing(report):
    results = Results.from_dict(json.loads(DEMO.read_text()))
    crown = seconds(results.methods.certificates["crown"].seconds)
    cost = _section(report, "## Cost per method")
    assert [row for row in cost if row.startswith("| crown |")] == [
        f"| crown | upper | sound | 1 | {crown} | — |  |"
    ]
    combined = next(row for row in cost if row.startswith("| combined |"))
    assert combined.split(" | ")[4] == "0" and "minimum of" in combined
    # the per-(eps, p) method rows carry no certificate seconds
    rows = _section(report, "### Every method, loss `ce`")
    certificate_rows = [r for r in rows if " | upper | " in r]
    assert certificate_rows and all(r.split(" | ")[6] == "—" for r in certificate_rows)
    assert report.count(f"| {crown} |") == 1


def test_every_table_with_a_dash_explains_it(report):
    tables = report.split("\n## ")[1:]
    for table in tables:
        for part in table.split("\n### "):
            rows = [line for line in part.splitlines() if line.startswith("| ")]
            if any(" — " in r or r.endswith("— |") for r in rows):
                assert "\n—: " in part, part.splitlines()[0]
    margin = _section(report, "## Risk band, loss `margin`")
    assert all(row.endswith("| — |") for row in margin if row.startswith("| 0"))
    assert any(line.startswith("—: UB/LB is defined only where the lower bound is > 0") for line in margin)
