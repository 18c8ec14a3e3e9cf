"""Progress off a terminal (wdrobust._progress): plain timestamped lines every interval, also while one step
blocks (the elapsed clock moves, no eta before a step has finished), a last line at the end, nothing for a
quick block or with quiet; the eta from the time per finished step; a bad interval is one ValueError; the
stages of a slow step (``stage``) in both displays, and the bound engine's layers among them."""

from __future__ import annotations

import io
import itertools
import re
import time

import pytest
from rich.console import Console
from rich.progress import Progress

from wdrobust import _progress
from wdrobust._progress import (
    INTERVAL_ENV,
    EtaColumn,
    PlainProgress,
    current_stage,
    interval,
    progress,
    stage,
)

LINE = re.compile(
    r"^\[\d\d:\d\d:\d\d\] (?P<what>.+): (?P<count>\d+/\d+) samples, elapsed \d:\d\d:\d\d(?P<eta>, eta .*)?$"
)


def plain_console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=False, width=200), buffer


def lines(buffer: io.StringIO) -> list[str]:
    return buffer.getvalue().splitlines()


def wait_for(condition, seconds: float = 30.0) -> None:
    """Wait until condition() holds (a deadline, not a timing: fails only if it never holds)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.01)


def test_lines_come_while_one_step_blocks_and_a_last_line_at_the_end(monkeypatch) -> None:
    monkeypatch.setenv(INTERVAL_ENV, "0.02")
    console, buffer = plain_console()
    with progress("certify", console=console, unit="samples") as update:
        update(0, 2, "crown")
        wait_for(lambda: len(lines(buffer)) >= 3)  # the step "blocks": no update meanwhile
        update(1, 2)
        wait_for(lambda: any("1/2" in line for line in lines(buffer)))
        update(2, 2)
    printed = lines(buffer)
    parsed = [LINE.match(line) for line in printed]
    assert all(parsed), printed
    blocked = [m for m in parsed if m["count"] == "0/2"]
    assert len(blocked) >= 3 and all(m["what"] == "crown" and m["eta"] is None for m in blocked)
    assert any(m["count"] == "1/2" and m["eta"] for m in parsed)
    assert parsed[-1]["count"] == "2/2"


def test_a_quick_block_and_quiet_print_nothing(monkeypatch) -> None:
    console, buffer = plain_console()
    with progress("attack", console=console, unit="samples") as update:  # default interval: 10 s
        update(5, 5)
    monkeypatch.setenv(INTERVAL_ENV, "0.001")
    with progress("attack", console=console, quiet=True) as update:
        update(1, 5)
        time.sleep(0.05)
    assert buffer.getvalue() == ""


def test_the_eta_is_the_time_per_finished_step_times_the_steps_left(monkeypatch) -> None:
    now = [100.0]
    monkeypatch.setattr(_progress.time, "monotonic", lambda: now[0])
    console, buffer = plain_console()
    plain = PlainProgress(console, "units", "units")
    plain.update(0, 5)
    now[0] = 130.0
    assert plain.line().endswith("units: 0/5 units, elapsed 0:00:30")
    plain.update(2, 5)  # 2 steps in 30 s: 15 s each, 3 left
    now[0] = 140.0
    assert plain.line().endswith("units: 2/5 units, elapsed 0:00:40, eta 0:00:35")
    now[0] = 200.0  # the third step outlasts the estimate: no false 0:00:00
    late = "units: 2/5 units, elapsed 0:01:40, eta unknown (longer than the average step)"
    assert plain.line().endswith(late)
    plain.update(5, 5)
    assert plain.line().endswith("units: 5/5 units, elapsed 0:01:40, eta 0:00:00")
    assert buffer.getvalue() == ""  # line() prints nothing


def test_the_bars_eta_follows_the_same_rule_as_the_plain_line() -> None:
    """EtaColumn: nothing before a step has finished, the time per step times the steps left, "unknown"
    once a slow step outlasts it (rich's own column froze at 0:00:00)."""
    now = [100.0]
    bar = Progress(EtaColumn(), get_time=lambda: now[0])
    task = bar.add_task("units", total=5)
    column = EtaColumn()
    now[0] = 130.0
    assert column.render(bar.tasks[0]).plain == ""
    bar.update(task, completed=2, last_step=now[0])  # 2 steps in 30 s: 15 s each, 3 left
    now[0] = 140.0
    assert column.render(bar.tasks[0]).plain == "eta 0:00:35"
    now[0] = 200.0
    assert column.render(bar.tasks[0]).plain == "eta unknown (longer than the average step)"
    bar.update(task, completed=5, last_step=now[0])
    assert column.render(bar.tasks[0]).plain == "eta 0:00:00"


@pytest.mark.parametrize("text", ["0", "-1", "soon", "nan"])
def test_a_bad_interval_is_one_value_error(monkeypatch, text: str) -> None:
    monkeypatch.setenv(INTERVAL_ENV, text)
    with pytest.raises(ValueError, match=f"WDROBUST_PROGRESS_INTERVAL must be a positive number.*{text}"):
        interval()
    monkeypatch.setenv(INTERVAL_ENV, "2.5")
    assert interval() == 2.5


def test_on_a_terminal_a_bar_with_the_label_and_the_count() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    with progress("certify", console=console, unit="samples") as update:
        update(0, 4, "crown")
        update(4, 4)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buffer.getvalue())
    assert "crown" in text and "4/4" in text and "samples" in text
    assert not re.search(r"^\[\d\d:\d\d:\d\d\]", text, re.M)  # no plain lines on a terminal


def test_stages_nest_show_in_the_plain_line_and_end_with_their_block(monkeypatch) -> None:
    console, _ = plain_console()
    plain = PlainProgress(console, "certify", "samples")
    plain.update(1, 4)
    with stage("crown balls"), stage("layer") as show:
        show("layer 2/3")
        assert current_stage() == "crown balls > layer 2/3"
        assert plain.line().endswith(" [crown balls > layer 2/3]")
    assert current_stage() == ""
    assert not plain.line().endswith("]")


def test_on_a_terminal_the_bar_shows_the_stage() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=160)
    with progress("certify", console=console, unit="samples") as update, stage("bab 12 domains"):
        update(1, 4, "crown")
        wait_for(lambda: "[bab 12 domains]" in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buffer.getvalue()))


def test_the_bound_engine_names_the_layer_it_bounds(monkeypatch) -> None:
    import torch
    from torch import nn

    from wdrobust.certify.bounds import BoundGraph
    from wdrobust.certify.bounds.propagation import Crown
    from wdrobust.certify.bounds.region import Region

    seen: list[str] = []
    bound = Crown._bound_neurons

    def watching(self, *args, **kwargs):
        seen.append(current_stage())
        return bound(self, *args, **kwargs)

    monkeypatch.setattr(Crown, "_bound_neurons", watching)
    torch.manual_seed(0)
    widths = (2, 8, 8, 8)
    hidden = [m for a, b in itertools.pairwise(widths) for m in (nn.Linear(a, b), nn.ReLU())]
    net = nn.Sequential(*hidden, nn.Linear(8, 3)).double()
    x0 = torch.zeros(1, 2, dtype=torch.float64)
    Crown(BoundGraph(net), Region.ball(x0, x0.new_full((1,), 1.0), "linf"), "crown")
    assert seen and all(re.fullmatch(r"layer [12]/2", s) for s in seen)
