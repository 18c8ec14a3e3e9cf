"""A user's own architecture, named ``SOURCE:Class``: SOURCE is a Python file (``nets/my_net.py``, run as a
script would be: its folder first on the import path) or an importable module (``mypackage.models``), and
Class an ``nn.Module`` subclass defined there. Importing runs the user's code: it happens only when the
user names the architecture (``--arch``, ``arch =`` of an evaluate TOML), never for a checkpoint sidecar.
Every failure is a ValueError with a one-line message naming SOURCE and Class.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from torch import nn

#: The separator of source and class name (the last one, so that a path may hold a drive letter).
SEPARATOR = ":"


def is_custom(arch: str) -> bool:
    """Whether an architecture name has the ``SOURCE:Class`` form of a user's own class."""
    return SEPARATOR in arch


def class_name(arch: str) -> str:
    """The class part of ``SOURCE:Class`` (the name recorded in results, without the user's path)."""
    return arch.rpartition(SEPARATOR)[2]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


@functools.cache
def _import_file(path: Path) -> ModuleType:
    """Execute the Python file at ``path`` (absolute) once per process as a module of its own name,
    with its folder first on sys.path while it runs (so that it imports its neighbours)."""
    name = f"wdrobust_arch_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"--arch: {path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: any failure is reported in one line
        raise ValueError(f"--arch: importing {path} failed: {_first_line(exc)}") from None
    finally:
        sys.path.remove(str(path.parent))
    return module


def _import_module(source: str) -> ModuleType:
    """The module of SOURCE: a ``.py`` file or a path with a folder, else an importable module name."""
    if source.endswith(".py") or "/" in source or "\\" in source:
        path = Path(source).expanduser()
        if not path.is_file():
            raise ValueError(f"--arch: no Python file {source}")
        return _import_file(path.resolve())
    try:
        return importlib.import_module(source)
    except ModuleNotFoundError as exc:
        missing = exc.name or source
        raise ValueError(f"--arch: no module named {missing!r} (give a .py file or a module)") from None
    except Exception as exc:  # the user's code
        raise ValueError(f"--arch: importing {source} failed: {_first_line(exc)}") from None


def load_class(arch: str) -> type[nn.Module]:
    """The class named by ``SOURCE:Class``; ValueError for a missing file, module or class, and for an
    object that is not an ``nn.Module`` subclass."""
    source, _, name = arch.rpartition(SEPARATOR)
    if not source or not name:
        raise ValueError(f"--arch {arch!r}: expected SOURCE:Class, e.g. my_net.py:Net or mypackage.nets:Net")
    module = _import_module(source)
    cls = getattr(module, name, None)
    if cls is None:
        raise ValueError(f"--arch: {source} has no class {name!r}")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        what = "a class" if isinstance(cls, type) else f"a {type(cls).__name__}"
        raise ValueError(f"--arch: {source}:{name} is {what}, not a torch.nn.Module subclass")
    return cls
