"""Progress with output that is not a terminal (wdrobust.cli.progress and the evaluate runner): timestamped
lines on stderr, silenced by --quiet; and the newcomer's session of issue 28 as a script with its output
redirected to a file: their own module through --arch, progress lines, the headline, the per-sample CSV."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _cli import runner
from _paths import ROOT
from _user_module import SOURCE

from wdrobust import data, nets
from wdrobust._progress import INTERVAL_ENV
from wdrobust.cli import app

LINE = re.compile(r"^\[\d\d:\d\d:\d\d\] .+: \d+/\d+ (samples|units|methods), elapsed \d:\d\d:\d\d", re.M)


@pytest.mark.parametrize(
    ("command", "flags"),
    [
        ("attack", ["--attack", "pgd", "--n", "450", "--option", "steps=20"]),
        ("certify", ["--method", "local,radius", "--n", "450"]),
    ],
)
def test_progress_lines_off_a_terminal_and_none_with_quiet(digits_mlp_path: Path, command, flags) -> None:
    args = [command, "--model", str(digits_mlp_path), *flags]
    loud = runner.invoke(app, args, env={INTERVAL_ENV: "0.001"})
    assert loud.exit_code == 0, loud.output
    assert LINE.search(loud.output), loud.output
    quiet = runner.invoke(app, [*args, "--quiet"], env={INTERVAL_ENV: "0.001"})
    assert quiet.exit_code == 0, quiet.output
    assert not LINE.search(quiet.output)


def test_newcomer_script_with_output_redirected_to_a_file(tmp_path: Path) -> None:
    """evaluate a user's module file through --arch with stdout and stderr going to a file, see progress
    lines there, read the headline at the end, export the per-sample CSV."""
    (tmp_path / "tiny_net.py").write_text(SOURCE)
    model = nets.build(f"{tmp_path / 'tiny_net.py'}:TinyNet", seed=0, hidden=24)
    torch.save({"model_state_dict": model.state_dict()}, tmp_path / "tiny_net.pt")
    script = tmp_path / "session.sh"
    script.write_text(
        "set -e\n"
        "wdrobust evaluate --model tiny_net.pt --arch tiny_net.py:TinyNet --arch-option hidden=24 \\\n"
        "    --n 20 --batch-size 10 --eps 0.05,0.1 --p 2,inf --attacks pgd --certificates crown \\\n"
        "    --out run > evaluate.log 2>&1\n"
        "wdrobust report run --format csv > report.log 2>&1\n"
    )
    bin_dir = Path(sys.executable).parent
    env = os.environ | {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT / "src"),
        INTERVAL_ENV: "0.2",
    }
    subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, check=True, timeout=600)
    log = (tmp_path / "evaluate.log").read_text()
    assert LINE.search(log), log
    tail = log[log.index("clean accuracy") :]
    assert "on 20 samples" in tail and "certified" in tail and "attacked" in tail
    assert re.search(r"^\s+0\.1\s+inf\s+\S+\s+\S+", tail, re.M), tail
    assert "report:" in tail and "results:" in tail
    with open(tmp_path / "run" / "samples.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 20
    assert {"clean_correct", "flip_distance", "certified_radius", "status_eps_0.1_p_inf"} <= set(rows[0])
    x, y = data.load("digits", "test", device="cpu")
    with torch.no_grad():
        correct = (model(x[:20]).argmax(1) == y[:20]).int().tolist()
    assert [int(r["clean_correct"]) for r in rows] == correct
