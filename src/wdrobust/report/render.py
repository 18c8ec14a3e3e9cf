"""Re-rendering a run's outputs from its store through the writers of ``report.writers`` (atomic writes):
by default results.json, report.md and plots/."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wdrobust.pipeline.document import Results
from wdrobust.report.sources import Sources
from wdrobust.report.writers import WRITERS


@dataclass(frozen=True)
class Rendered:
    """The run's typed results and the written paths by label ("results", "report", "plots", ...)."""

    document: Results
    outputs: dict[str, list[Path]]

    @property
    def results(self) -> Path:
        """The results.json written."""
        return self.outputs["results"][0]

    @property
    def report(self) -> Path:
        """The report.md written."""
        return self.outputs["report"][0]

    @property
    def plots(self) -> list[Path]:
        """The plots written."""
        return self.outputs["plots"]


def default_formats() -> list[str]:
    """The formats ``render`` writes when none are named (every writer marked default)."""
    return [name for name, w in WRITERS.items() if w.default]


def render(run_dir: str | Path, formats: Sequence[str] | None = None, out: Path | None = None) -> Rendered:
    """Aggregate the store of ``run_dir`` and write ``formats`` (names in ``WRITERS``; default: the
    default ones), ``out`` passed to writers that take it."""
    sources = Sources.load(run_dir)
    outputs: dict[str, list[Path]] = {}
    for name in default_formats() if formats is None else formats:
        outputs |= WRITERS[name].write(sources, out)
    return Rendered(sources.results, outputs)
