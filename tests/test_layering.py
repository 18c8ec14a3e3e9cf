"""The import ladder of docs/architecture.md, enforced: every import statement of every module under
src/wdrobust (module level, inside functions and under TYPE_CHECKING alike) goes to the importer's own
layer or a lower one, never up. Run by `make lint` (and `make test`).

The ladder is written once, here, as data; the architecture page shows the same line (checked below).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from _paths import ROOT

PACKAGE = ROOT / "src" / "wdrobust"
DOCS = ROOT / "docs" / "architecture.md"

#: Layers from the bottom up; a layer may import itself and every layer before it. The first group is
#: the base of private helpers (devices and CPU threads, atomic writes, option items, progress columns,
#: JSON forms of dataclasses).
LADDER: tuple[tuple[str, ...], ...] = (
    ("_atomic", "_device", "_optional", "_options", "_progress", "_serde"),
    ("threat",),
    ("losses",),
    ("primal",),
    ("nets",),
    ("data",),
    ("attacks",),
    ("certify",),
    ("verify",),
    ("train",),
    ("models",),
    ("pipeline",),
    ("report",),
    ("api",),
    ("cli",),
)
#: The package root (``wdrobust/__init__.py``: the version, ThreatModel and the lazy ``wdrobust.evaluate``
#: facade) sits with threat, the one layer it imports.
ROOT_LAYER = "threat"
#: Upward imports that exist today in files other refactors are rewriting: (importer, imported module,
#: why). Each must still exist (a stale entry fails, so the list only shrinks); none may be added.
KNOWN: tuple[tuple[str, str, str], ...] = ()

RANK = {name: level for level, group in enumerate(LADDER) for name in group}


def layer_of(module: str) -> str:
    """The layer of a dotted module name under wdrobust: its first component, or the root's layer."""
    parts = module.split(".")
    if parts[0] != "wdrobust":
        raise ValueError(f"{module} is not a wdrobust module")
    return parts[1] if len(parts) > 1 else ROOT_LAYER


def module_name(path: Path, package: Path = PACKAGE) -> str:
    """wdrobust.a.b for package/a/b.py (wdrobust.a for package/a/__init__.py)."""
    rel = path.relative_to(package).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(["wdrobust", *parts])


def imported_modules(tree: ast.AST, importer: str, is_package: bool, package: Path = PACKAGE):
    """(line, dotted module) for every wdrobust module the tree imports; ``from wdrobust.x import y``
    names wdrobust.x.y when that is a module or package of its own (a file or folder under package)."""
    here = importer.split(".") if is_package else importer.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "wdrobust":
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != "wdrobust":
                continue
            for alias in node.names:
                sub = Path(package, *base.split(".")[1:], alias.name)
                is_module = sub.with_suffix(".py").is_file() or sub.is_dir()
                yield node.lineno, f"{base}.{alias.name}" if is_module else base


def violations(package: Path = PACKAGE) -> list[tuple[str, int, str, str]]:
    """(importer file, line, imported module, reason) for every import that runs up the ladder or
    involves a layer the ladder does not name."""
    found = []
    for path in sorted(package.rglob("*.py")):
        importer = module_name(path, package)
        own = layer_of(importer)
        rel = str(path.relative_to(package.parent))
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, module in imported_modules(tree, importer, path.name == "__init__.py", package):
            target = layer_of(module)
            if own not in RANK or target not in RANK:
                missing = own if own not in RANK else target
                found.append((rel, line, module, f"layer {missing!r} is not in the ladder"))
            elif RANK[target] > RANK[own]:
                found.append((rel, line, module, f"{own} imports {target}, a higher layer"))
    return found


def test_no_import_runs_up_the_ladder():
    known = {(importer, module) for importer, module, _ in KNOWN}
    found = violations()
    new = [v for v in found if (v[0], v[2]) not in known]
    assert not new, "imports up the ladder:\n" + "\n".join(f"{f}:{n}: {m} ({why})" for f, n, m, why in new)
    stale = known - {(f, m) for f, _, m, _ in found}
    assert not stale, f"fixed, remove from KNOWN: {sorted(stale)}"


def test_every_module_belongs_to_a_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    tops = modules | {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert tops <= set(RANK), f"modules outside the ladder: {sorted(tops - set(RANK))}"


def test_the_architecture_page_shows_this_ladder():
    line = " -> ".join(", ".join(group) if len(group) > 1 else group[0] for group in LADDER[1:])
    assert f"    {line}\n" in DOCS.read_text(), f"docs/architecture.md should show the ladder: {line}"


def _fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    package = tmp_path / "wdrobust"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("from wdrobust.pipeline.runner import run\n", "wdrobust.pipeline.runner"),
        ("import wdrobust.pipeline.runner\n", "wdrobust.pipeline.runner"),
        ("from wdrobust import pipeline\n", "wdrobust.pipeline"),
        ("def f():\n    from ..pipeline import runner\n", "wdrobust.pipeline.runner"),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from wdrobust.cli import app\n",
            "wdrobust.cli.app",
        ),
    ],
)
def test_an_upward_import_is_caught(tmp_path, source, module):
    """A fake package where attacks/base.py imports upward, in each spelling of an import."""
    package = _fake_package(
        tmp_path,
        {
            "__init__.py": "",
            "attacks/__init__.py": "",
            "attacks/base.py": "from wdrobust.threat import ThreatModel\nfrom . import pgd\n" + source,
            "attacks/pgd.py": "",
            "threat.py": "",
            "pipeline/__init__.py": "",
            "pipeline/runner.py": "from wdrobust.attacks.base import Attack\n",
            "cli/__init__.py": "",
            "cli/app.py": "",
        },
    )
    found = violations(package)
    assert [(f, m) for f, _, m, _ in found] == [("wdrobust/attacks/base.py", module)], found


def test_a_module_outside_the_ladder_is_caught(tmp_path):
    package = _fake_package(
        tmp_path, {"__init__.py": "", "plugins.py": "from wdrobust import threat\n", "threat.py": ""}
    )
    assert [why for *_, why in violations(package)] == ["layer 'plugins' is not in the ladder"]
