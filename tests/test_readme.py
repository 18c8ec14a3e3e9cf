"""Every `wdrobust ...` line of the README's ```bash blocks, and its ```python blocks, run and exit 0.

The lines run in README order in one temporary directory (a later line may use an earlier line's output,
e.g. a checkpoint or a run folder), with the venv's ``wdrobust`` script and a private model cache.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
QUICK_START = "## CLI quick start"
SCRIPT = Path(sys.executable).with_name("wdrobust")


def readme_commands(text: str) -> list[str]:
    """The lines starting with ``wdrobust `` inside ```bash fenced blocks (backslash continuations joined)."""
    lines: list[str] = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith("wdrobust "):
                lines.append(line.strip())
    return lines


def test_readme_commands_are_found():
    text = "x\n```bash\nmake demo\nwdrobust train \\\n  --epochs 2  # two\n```\n```python\nwdrobust no\n```\n"
    assert readme_commands(text) == ["wdrobust train    --epochs 2  # two"]
    text = README.read_text()
    if QUICK_START in text:
        assert readme_commands(text), f"README has {QUICK_START!r} but no `wdrobust ...` lines in bash blocks"


def test_readme_cli_lines_run(tmp_path):
    env = {**os.environ, "WDROBUST_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    for line in readme_commands(README.read_text()):
        args = shlex.split(line, comments=True)
        done = subprocess.run([str(SCRIPT), *args[1:]], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=600, check=False)  # fmt: skip
        assert done.returncode == 0, f"README line failed: {line}\n{done.stdout}\n{done.stderr}"


def test_readme_python_blocks_run(tmp_path):
    """The ```python blocks of the README run, in order, as one script."""
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)
    assert blocks, "README has no python quick start"
    env = {**os.environ, "WDROBUST_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", "\n".join(blocks)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, f"README python failed:\n{done.stdout}\n{done.stderr}"
    assert "<= worst-case expected CE <=" in done.stdout
