"""Row chunks of the intermediate passes of ``bounds.propagation``: every row once, the union of a chunk's
neurons within UNION_WASTE of its rows' own counts (or a single row), the coefficient budget kept."""

from __future__ import annotations

import torch

from wdrobust.certify.bounds import propagation


def test_row_chunks_cover_every_row_once_and_bound_the_waste() -> None:
    g = torch.Generator().manual_seed(0)
    # rows of three kinds: few neurons, many shared ones, many disjoint ones
    need = torch.zeros((40, 300), dtype=torch.bool)
    for row in range(40):
        kind = row % 3
        start = 0 if kind == 1 else int(torch.randint(0, 250, (1,), generator=g))
        need[row, start : start + (5 if kind == 0 else 50)] = True
    need[7] = False  # a row with nothing to bound
    widest = 1000
    chunks = propagation._row_chunks(need, widest)
    rows = torch.cat(chunks).sort().values
    assert torch.equal(rows, torch.arange(40))
    for chunk in chunks:
        union = int(need[chunk].any(dim=0).sum())
        own = int(need[chunk].sum())
        assert chunk.numel() == 1 or chunk.numel() * union <= propagation.UNION_WASTE * own
        assert chunk.numel() == 1 or chunk.numel() * 2 * max(union, 1) * widest <= propagation.CHUNK_ENTRIES
    assert len(chunks) < 40  # rows alike share chunks
