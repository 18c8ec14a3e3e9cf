"""attacks/ascent.py: row-wise best tracking (``keep_best``, ``improve_``) equals the row-wise where."""

from __future__ import annotations

import pytest
import torch

from wdrobust.attacks.ascent import improve_, keep_best


def where_rows(better: torch.Tensor, x: torch.Tensor, best: torch.Tensor) -> torch.Tensor:
    """Reference: rows of x where better, else rows of best."""
    return torch.where(better.reshape(-1, *([1] * (x.dim() - 1))), x, best)


@pytest.mark.parametrize("case", ["all", "none", "some"])
def test_keep_best_and_improve_match_the_row_wise_where(case: str) -> None:
    g = torch.Generator().manual_seed(0)
    best_x, x = torch.rand(6, 2, 3, generator=g), torch.rand(6, 2, 3, generator=g)
    best_v = torch.zeros(6)
    v = {"all": torch.ones(6), "none": -torch.ones(6), "some": torch.tensor([1.0, -1, 1, -1, -1, 1])}[case]
    better = v > best_v
    out_x, out_v = keep_best(best_x, best_v, x, v)
    assert torch.equal(out_x, where_rows(better, x, best_x)) and torch.equal(out_v, torch.maximum(v, best_v))
    if case == "all":
        assert out_x is x  # no copy when every row improved
    owned = best_x.clone()
    assert improve_(owned, x, better) is owned
    assert torch.equal(owned, where_rows(better, x, best_x))
