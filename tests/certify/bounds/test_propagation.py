"""Row chunks of the intermediate passes of ``bounds.propagation``: every row once, the union of a chunk's
neurons within UNION_WASTE of its rows' own counts (or a single row), the coefficient budget kept; small
passes are not split."""

from __future__ import annotations

import torch

from wdrobust.certify.bounds import propagation


def _need() -> torch.Tensor:
    """(40, 300) rows of three kinds: few neurons, many shared ones, many disjoint ones; one empty row."""
    g = torch.Generator().manual_seed(0)
    need = torch.zeros((40, 300), dtype=torch.bool)
    for row in range(40):
        kind = row % 3
        start = 0 if kind == 1 else int(torch.randint(0, 250, (1,), generator=g))
        need[row, start : start + (5 if kind == 0 else 50)] = True
    need[7] = False
    return need


def test_row_chunks_cover_every_row_once_and_bound_the_waste(monkeypatch) -> None:
    monkeypatch.setattr(propagation, "SMALL_PASS", 0)  # every pass counts as large
    need, widest = _need(), 1000
    chunks = propagation._row_chunks(need, widest)
    assert torch.equal(torch.cat(chunks).sort().values, torch.arange(40))
    for chunk in chunks:
        union = int(need[chunk].any(dim=0).sum())
        assert chunk.numel() == 1 or chunk.numel() * union <= propagation.UNION_WASTE * int(need[chunk].sum())
        assert chunk.numel() == 1 or chunk.numel() * 2 * max(union, 1) * widest <= propagation.CHUNK_ENTRIES
    assert 1 < len(chunks) < 40  # rows alike share chunks, unlike ones do not


def test_small_passes_are_one_chunk() -> None:
    chunks = propagation._row_chunks(_need(), 10)  # 40 rows x 300 neurons x 10 entries: a small pass
    assert len(chunks) == 1 and chunks[0].numel() == 40
