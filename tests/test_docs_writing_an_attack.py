"""docs/extending.md, "Writing an attack": the page's python block runs as written (so the page cannot rot),
costs what the page says, and its FGSM attains the exact maximum margin of a linear model over the ball."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import torch
from _paths import ROOT
from torch import nn

from wdrobust.attacks.steps import safe_radius
from wdrobust.threat import ThreatModel

PAGE = ROOT / "docs" / "extending.md"
SECTION = "## Writing an attack"


def section_code(text: str, heading: str) -> str:
    """The ```python blocks of the section under ``heading`` (up to the next ## heading), joined."""
    if heading not in text:
        raise ValueError(f"no section {heading!r}")
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"^```python\n(.*?)^```", section, flags=re.S | re.M))


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    """The namespace after running the page's example."""
    code = section_code(PAGE.read_text(), SECTION)
    assert "class FGSM(Attack)" in code
    namespace: dict[str, Any] = {"__name__": "extending_example"}
    exec(compile(code, str(PAGE), "exec"), namespace)
    return namespace


def test_section_code_reads_only_the_section() -> None:
    text = "## A\n```python\na = 1\n```\n## B\n```python\nb = 2\n```\n```bash\nc\n```\n"
    text += "## C\n```python\nd\n```\n"
    assert section_code(text, "## B") == "b = 2\n"
    with pytest.raises(ValueError, match="no section"):
        section_code(text, "## D")


def test_the_example_runs_at_the_cost_the_page_states(example: dict[str, Any]) -> None:
    result, y = example["result"], example["y"]
    n = len(y)
    assert (result.forward_passes, result.backward_passes) == (3 * n, n)
    finite = np.isfinite(result.t)
    assert finite.sum(axis=1).tolist() == [2] * n  # x0 and the FGSM point
    assert result.t[finite].max() <= 0.1
    summary = example["summary"]
    assert 0.0 <= summary.robust_accuracy < summary.clean_accuracy  # one step breaks some digits


def linear_margin_max(w: torch.Tensor, x0: torch.Tensor, radius: float) -> torch.Tensor:
    """max over B_inf(x0, radius) cap [0,1]^d of <w_i, x - x0_i>, coordinate by coordinate: (N,)."""
    up, down = (1.0 - x0).clamp(max=radius), x0.clamp(max=radius)
    return torch.where(w > 0, w * up, -w * down).sum(dim=1)


def test_the_example_attains_the_maximum_margin_of_a_linear_model(example: dict[str, Any]) -> None:
    """For two classes, grad CE = p_other (W_other - W_y): the sign step, clamped to the ball and the box,
    is the maximiser of the (linear) margin, whose maximum is separable over coordinates."""
    g = torch.Generator().manual_seed(0)
    n, d, eps = 16, 12, 0.1
    model = nn.Linear(d, 2)
    x = torch.rand(n, d, generator=g)
    x[:4, :3] = torch.tensor([0.0, 1.0, 0.97])  # box edges: the clamp must cut the step there
    y = torch.randint(0, 2, (n,), generator=g)
    result = example["FGSM"](model, ThreatModel("linf", eps), losses=("margin",)).run(x, y)
    with torch.no_grad():
        w = model.weight[1 - y] - model.weight[y]  # margin m = z_other - z_y = <w_i, x> + const
    exact = linear_margin_max(w, x, float(safe_radius(torch.tensor(eps))))
    got = torch.from_numpy(result.gains["margin"].max(axis=1)).float()
    assert torch.allclose(got, exact, atol=1e-5), (got - exact).abs().max()
