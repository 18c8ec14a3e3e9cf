"""Every reference a reader can follow resolves inside the repository: the relative markdown links of
README.md and docs/ (to a file, and for ``#anchor`` links to a heading of it), and every ``docs/...md``
or ``DESIGN.md`` reference in README.md, docs/ and the sources' docstrings (DESIGN.md lives outside the
repository, where users never see it: the notation is docs/notation.md); and the demo figures that
docs/evaluate.md quotes are the README's and the program's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _paths import ROOT

from wdrobust.attacks import ATTACKS
from wdrobust.certify import CERTIFICATES
from wdrobust.pipeline import build_config
from wdrobust.pipeline.jobs import plan, units
from wdrobust.pipeline.jobs.plan import Layout

MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SOURCES = sorted((ROOT / "src" / "wdrobust").rglob("*.py"))
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
REFERENCE = re.compile(r"(?<![\w/.])((?:docs/[\w./-]+\.md|DESIGN\.md)(?:#[\w-]+)?)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation other than - and _ dropped, spaces as -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def prose_lines(path: Path) -> list[str]:
    """The lines of a markdown file with its fenced code blocks blanked (line numbers kept)."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), path.read_text()).splitlines()


def headings(path: Path) -> list[tuple[int, str]]:
    """(line index, text) of a markdown file's headings, outside code blocks."""
    matches = ((i, re.match(r"#{1,6}\s+(.*)", line)) for i, line in enumerate(prose_lines(path)))
    return [(i, m.group(1).strip()) for i, m in matches if m]


def anchors(path: Path) -> set[str]:
    """The anchors of a markdown file's headings (repeated headings get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    out = set()
    for _, heading in headings(path):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def broken(target: str, base: Path) -> str | None:
    """Why ``target`` (a path relative to ``base``, optionally with #anchor) does not resolve; None if it
    does."""
    file, _, anchor = target.partition("#")
    path = (base / file).resolve() if file else None
    if path is not None and not path.exists():
        return f"{target}: no file {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}"
    if path is not None and not path.is_relative_to(ROOT):
        return f"{target}: outside the repository"
    if anchor and path is not None and path.suffix == ".md" and anchor not in anchors(path):
        return f"{target}: no heading #{anchor} in {path.relative_to(ROOT)}"
    return None


def problems(path: Path) -> list[str]:
    """Every unresolved link and reference of one file (markdown or Python source)."""
    text = path.read_text()
    found = []
    if path.suffix == ".md":
        for target in LINK.findall(FENCE.sub("", text)):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            if target.startswith("#"):
                target = path.name + target
            found.append(broken(target, path.parent))
    found += [broken(ref, ROOT) for ref in REFERENCE.findall(text)]
    return [f"{path.relative_to(ROOT)}: {p}" for p in found if p is not None]


@pytest.mark.parametrize("path", MARKDOWN + SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_and_reference_resolves(path):
    assert problems(path) == []


#: A section named in prose: "Jobs" below / above (a heading of the same page on that side), or the
#: README's "What `make demo` produces" (a heading of README.md).
NAMED_SECTION = re.compile(r'(README\'s )?"([^"\n]+)" ?(below|above)?')


def section_problems(path: Path) -> list[str]:
    """Every section named in prose (``NAMED_SECTION``) that no heading of the page it names begins with,
    on the side it says."""
    found = []
    for number, line in enumerate(prose_lines(path)):
        for readme, name, side in NAMED_SECTION.findall(line):
            if not readme and not side:
                continue
            page = ROOT / "README.md" if readme else path
            here = [(i, h) for i, h in headings(page) if h.lower().startswith(name.lower())]
            if side == "below":
                here = [(i, h) for i, h in here if i > number]
            elif side == "above":
                here = [(i, h) for i, h in here if i < number]
            if not here:
                where = f"{side} in {path.name}" if side else "in README.md"
                found.append(f"{path.relative_to(ROOT)}:{number + 1}: no section {name!r} {where}")
    return found


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_section_named_in_prose_exists(path):
    assert section_problems(path) == []


def test_the_checker_finds_broken_links_anchors_and_design_references(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Title\n## Some `code`, here\n")
    page = tmp_path / "docs" / "b.md"
    page.write_text(
        "[ok](a.md#some-code-here) [ok](a.md#title) [web](https://x.org/y.md) [self](#top)\n# Top\n"
        "[gone](c.md) [anchor](a.md#missing) see docs/a.md#title and DESIGN.md section 1\n"
        "```\n[in code](nowhere.md)\n```\n"
    )
    assert problems(page) == [
        "docs/b.md: c.md: no file docs/c.md",
        "docs/b.md: a.md#missing: no heading #missing in docs/a.md",
        "docs/b.md: DESIGN.md: no file DESIGN.md",
    ]
    assert slug("Scale-out: sample selection, shards, merge, torchrun") == (
        "scale-out-sample-selection-shards-merge-torchrun"
    )


def demo_facts(text: str) -> dict[str, object]:
    """The demo figures a paragraph quotes: samples, eps and p sets, attacks and certificates (names of
    the registries, in order), units of work and their seconds."""
    flat = " ".join(text.split())

    def names(after: str, registry: object) -> list[str]:
        words = re.search(rf"{after} ([\w+\-(), ]+)", flat)
        return [w for w in re.split(r"[,\s]+", words.group(1)) if w in registry] if words else []

    units = re.search(r"(\d+) units of work in (\d+) s", flat)
    return {
        "n": re.search(r"all (\d+) test digits", flat).group(1),
        "eps": re.search(r"eps in \{([^}]*)\}", flat).group(1).replace(" ", ""),
        "p": re.search(r"p in \{([^}]*)\}", flat).group(1).replace(" ", ""),
        "attacks": names("attacks", ATTACKS),
        "certificates": names("certificates", CERTIFICATES),
        "units": units.group(1) if units else None,
        "seconds": units.group(2) if units else None,
    }


def test_the_demo_figures_of_docs_evaluate_match_the_readme_and_the_program():
    """docs/evaluate.md's description of the demo quotes what the README quotes (one measurement), and
    both describe what `wdrobust evaluate` with no arguments runs: its configuration and its unit count."""
    readme = (ROOT / "README.md").read_text().split("## What `make demo` produces", 1)[1].split("\n\n")[1]
    paragraphs = (ROOT / "docs" / "evaluate.md").read_text().split("\n\n")
    guide = next(p for p in paragraphs if "With no arguments" in p)
    quoted = demo_facts(readme)
    assert demo_facts(guide) == quoted
    cfg = build_config()
    assert quoted["n"] == str(cfg.n) and quoted["units"] is not None
    assert quoted["eps"] == ",".join(cfg.eps) and quoted["p"] == ",".join(cfg.p)
    assert quoted["attacks"] == list(cfg.attacks) and quoted["certificates"] == list(cfg.certificates)
    assert int(quoted["units"]) == len(units(plan(cfg), Layout(cfg.n, cfg.batch_size)))


def test_the_demo_facts_are_read_from_a_paragraph():
    text = ("all 450 test digits, linf cost, eps in {0.005, 0.01}, p in {1, inf}, attacks pgd, wda++ and\n"
            "certificates global, first-order (estimate), crown, on one CPU thread: 45 units of work in 9 "
            "s")  # fmt: skip
    assert demo_facts(text) == {"n": "450", "eps": "0.005,0.01", "p": "1,inf", "attacks": ["pgd", "wda++"],
                                "certificates": ["global", "first-order", "crown"], "units": "45",
                                "seconds": "9"}  # fmt: skip


def test_the_section_checker_finds_missing_and_misplaced_sections(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "README.md").write_text("# wdrobust\n## What `make demo` produces\n")
    page = tmp_path / "page.md"
    page.write_text(
        'see "Jobs" below and "Jobs" above, the README\'s "What `make demo` produces", a "quote"\n'
        "## Jobs, units and resumption\n"
        'the README\'s "Install" section\n```\n"Code" below\n```\n'
    )
    assert section_problems(page) == [
        "page.md:1: no section 'Jobs' above in page.md",
        "page.md:3: no section 'Install' in README.md",
    ]
