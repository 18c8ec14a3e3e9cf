"""Every reference a reader can follow resolves inside the repository: the relative markdown links of
README.md and docs/ (to a file, and for ``#anchor`` links to a heading of it), and every ``docs/...md``
or ``DESIGN.md`` reference in README.md, docs/ and the sources' docstrings (DESIGN.md lives outside the
repository, where users never see it: the notation is docs/notation.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _paths import ROOT

MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SOURCES = sorted((ROOT / "src" / "wdrobust").rglob("*.py"))
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
REFERENCE = re.compile(r"(?<![\w/.])((?:docs/[\w./-]+\.md|DESIGN\.md)(?:#[\w-]+)?)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation other than - and _ dropped, spaces as -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a markdown file's headings (repeated headings get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", path.read_text()).splitlines():
        if match := re.match(r"#{1,6}\s+(.*)", line):
            base = slug(match.group(1))
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
