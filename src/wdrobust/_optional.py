"""The optional dependencies, declared once: which package each optional capability needs, the extra that
installs it, and one import function that turns a missing package into a one-line ValueError.

    require("onnx")          # the module, or ValueError("reading ONNX models (.onnx files) needs the ...")

A capability that needs a new optional package adds one ``OPTIONAL`` entry (and the extra in pyproject.toml);
the CLI's one-line error path and the hint then come with it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Optional:
    """An optional package: its import name, the pip extra of wdrobust that installs it, and the capability
    (a phrase completing "... needs the package") it serves."""

    module: str
    extra: str
    needed_for: str

    @property
    def hint(self) -> str:
        """The one-line message shown when the package is missing."""
        install = f"pip install 'wdrobust[{self.extra}]'"
        return f"{self.needed_for} needs the optional package {self.module}: {install}"


#: Every optional package, by its import name.
OPTIONAL: dict[str, Optional] = {
    "onnx": Optional("onnx", "onnx", "reading ONNX models (.onnx files)"),
    "pyautoattack": Optional("pyautoattack", "reference", "the autoattack baseline (reference AutoAttack)"),
}


def require(name: str) -> ModuleType:
    """The module of the registered optional package ``name``; ValueError with the install hint when it is
    not installed (KeyError for a name that is not registered: a programming error)."""
    entry = OPTIONAL[name]
    try:
        return importlib.import_module(entry.module)
    except ImportError:
        raise ValueError(entry.hint) from None
