"""The typed results model (``pipeline.document``): it reads and writes
results.json exactly (bytes), p is a float inside, the document follows docs/results.schema.json, a malformed
document is refused naming the path of the bad value, aggregation builds the same model the document reads
back, and the output formats of ``report.writers`` each write the files they declare through
`wdrobust report --format`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from _cli import invoke, one_line_error
from _jsonschema import errors
from _paths import ROOT

from wdrobust.cli.report import FORMATS
from wdrobust.pipeline.document import Normalization
from wdrobust.pipeline.store import STORE_NAME, Store
from wdrobust.report import SCHEMA, Results
from wdrobust.report.writers import WRITERS

SCHEMA_FILE = json.loads((ROOT / "docs" / "results.schema.json").read_text())
DEMO = ROOT / "docs" / "demo" / "results.json"


def _round_trip(text: str) -> str:
    """results.json text -> Results -> results.json text (as the writer formats it)."""
    return json.dumps(Results.from_dict(json.loads(text)).to_dict(), indent=2, allow_nan=False) + "\n"


def test_the_demo_document_round_trips_byte_for_byte_and_follows_the_schema():
    text = DEMO.read_text()
    assert _round_trip(text) == text
    doc = json.loads(text)
    assert errors(doc, SCHEMA_FILE) == []
    results = Results.from_dict(doc)
    assert results.schema == SCHEMA == SCHEMA_FILE["$id"]
    assert [tm.p for tm in results.threat_models[:3]] == [1.0, 2.0, math.inf]
    assert all(type(tm.p) is float for tm in results.threat_models)
    band = results.bounds("ce", "0.01", "inf")
    assert band.lower_bound == band.best_lower.value <= band.upper_bound == band.best_sound_upper.value
    assert band.upper["combined"].methods and band.best_lower.pooled_jobs == len(doc["config"]["eps"]) * 12


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    """A small CLI run whose model record has a normalisation (to cover every optional part)."""
    monkeypatch.chdir(tmp_path)
    flags = ["--n", "6", "--batch-size", "6", "--eps", "0.05,1/10", "--p", "1.5,inf", "--attacks",
             "pgd,wda++", "--certificates", "global,radius,first-order", "--mean", "0.5", "--std", "0.5",
             "--quiet"]  # fmt: skip
    result = invoke("evaluate", "--out", "run", *flags)
    assert result.exit_code == 0, result.output
    return tmp_path / "run"


def test_a_written_document_round_trips_and_follows_the_schema(run_dir):
    text = (run_dir / "results.json").read_text()
    assert _round_trip(text) == text
    doc = json.loads(text)
    assert errors(doc, SCHEMA_FILE) == []
    results = Results.from_dict(doc)
    assert results.model.normalization == Normalization((0.5,), (0.5,))
    assert [tm.p for tm in results.threat_models] == [1.5, math.inf, 1.5, math.inf]
    assert [tm["p"] for tm in doc["threat_models"]] == [1.5, "inf", 1.5, "inf"]
    assert results.bounds("zero_one", 0.1, "inf").accuracy.clean == results.clean_accuracy
    assert not results.bounds("ce", 0.05, 1.5).upper["first-order"].sound


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("run"), "missing 'run'"),
        (lambda d: d["model"].update(extra=1), "unexpected key 'extra'"),
        (lambda d: d["threat_models"][0].update(p="two"), "$.threat_models[0].p"),
        (lambda d: d["threat_models"][0].update(p=0.5), "$.threat_models[0].p"),
        (lambda d: d["methods"]["attacks"]["pgd"].update(jobs=True), "$.methods.attacks.pgd.jobs"),
        (lambda d: d["threat_models"][1]["losses"]["ce"]["upper"]["global"].update(value="big"), ".value"),
        (lambda d: d["threat_models"][0]["losses"]["ce"]["lower"]["best"].pop("budget_ok"), ".lower.best"),
    ],
)
def test_the_schema_rejects_what_the_model_does_not_write(change, message):
    doc = json.loads(DEMO.read_text())
    change(doc)
    found = errors(doc, SCHEMA_FILE)
    assert found and any(message in e for e in found), found


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(schema="wdrobust/results/v2"), "$.schema: expected 'wdrobust/results/v1'"),
        (lambda d: d.pop("run"), "$: missing key 'run'"),
        (lambda d: d["clean"].pop("loss"), "$.clean: missing key 'loss'"),
        (lambda d: d["model"].update(extra=1), "$.model: unexpected key 'extra'"),
        (lambda d: d["threat_models"][0].update(p="two"), "$.threat_models[0].p: expected a number"),
        (
            lambda d: d["methods"]["attacks"]["pgd"].update(jobs=True),
            "$.methods.attacks.pgd.jobs: expected an",
        ),
        (
            lambda d: d["threat_models"][1]["losses"]["ce"]["upper"]["global"].update(value="big"),
            "$.threat_models[1].losses.ce.upper.global.value: expected a number",
        ),
        (
            lambda d: d["threat_models"][0]["losses"]["ce"]["lower"]["best"].pop("budget_ok"),
            "$.threat_models[0].losses.ce.lower.best: missing key 'budget_ok'",
        ),
        (
            lambda d: d["threat_models"][0]["losses"]["ce"]["lower"].update(worst=None),
            "$.threat_models[0].losses.ce.lower: unexpected key 'worst'",
        ),
        (
            lambda d: d["model"].update(normalization={"mean": [0.5]}),
            "$.model.normalization: missing key 'std'",
        ),
    ],
)
def test_a_malformed_document_is_refused_naming_the_path(change, message):
    doc = json.loads(DEMO.read_text())
    change(doc)
    with pytest.raises(ValueError) as info:
        Results.from_dict(doc)
    assert str(info.value).startswith(message)


def test_optional_keys_are_absent_when_none_and_inline_costs_sit_in_their_entry():
    results = Results.from_dict(json.loads(DEMO.read_text()))
    losses = results.threat_models[4].losses
    written = results.to_dict()["threat_models"][4]["losses"]
    band = losses["zero_one"].accuracy
    assert written["zero_one"]["accuracy"] == {"clean": band.clean, "upper": band.upper, "lower": band.lower}
    assert losses["margin"].accuracy is None and "accuracy" not in written["margin"]
    pgd = written["zero_one"]["lower"]["attacks"]["pgd"]
    assert list(pgd) == ["value", "budget", "budget_ok", "seconds", "forward_passes", "backward_passes"]
    assert pgd["seconds"] == losses["zero_one"].lower["pgd"].cost.seconds
    upper = written["zero_one"]["upper"]
    assert list(upper["combined"])[:3] == ["value", "sound", "methods"] and "methods" not in upper["global"]
    assert "pooled_jobs" in written["zero_one"]["lower"]["best"] and "pooled_jobs" not in pgd


def test_a_broken_stored_configuration_gives_a_one_line_report_error(run_dir):
    with Store(run_dir / STORE_NAME) as store:
        store.set_meta({"config": store.get_meta("config") | {"n": "six"}})
    one_line_error(invoke("report", "run"), f"{STORE_NAME}: the stored configuration.n: expected an integer")


def test_every_registered_format_writes_the_files_it_declares(run_dir):
    assert ("all", *WRITERS) == FORMATS
    help_text = invoke("report", "--help").output
    assert all(name in help_text for name in FORMATS)
    for path in [run_dir / "results.json", run_dir / "report.md", *(run_dir / "plots").glob("*.png")]:
        path.unlink()
    for name, writer in WRITERS.items():
        before = {p for p in run_dir.rglob("*") if p.is_file()}
        result = invoke("report", "run", "--format", name)
        assert result.exit_code == 0, result.output
        written = {p for p in run_dir.rglob("*") if p.is_file()} - before
        printed = {
            Path(p) for line in result.output.splitlines() for p in line.split(": ", 1)[1].strip().split(", ")
        }
        assert {run_dir.parent / p for p in printed} == written
        declared = [f.strip().rstrip("/") for f in writer.files.split(",")]
        assert sorted({p.relative_to(run_dir).parts[0] for p in written}) == sorted(declared), name
    one_line_error(invoke("report", "run", "--format", "results", "--out", "x.json"), "--out applies only")
