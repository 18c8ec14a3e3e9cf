"""scripts/paper_table.py: its core on a tiny self-made network (certified <= attacked at every (eps, p),
the best attack <= W-PGD and <= every kappa-mixture), the kappa-mixture formula, the radius grid, the
per-network cache and the assembly from it, the clean skip without shared/, and, when ../shared is here,
certified <= attacked on two real CIFAR-10 images of oval21's smallest network with the script's own
functions. The full script on the shared CIFAR-10 networks takes minutes per image: it is run by hand
(docs/paper.md), not by the suite."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import pytest
import torch
from _paths import ROOT
from torch import nn

sys.path.insert(0, str(ROOT / "scripts"))
import paper_table


def test_eps_grid_and_kappa_mixture() -> None:
    assert paper_table.eps_grid("own,2/255,8/255", 2 / 255) == [2 / 255, 8 / 255]
    assert paper_table.eps_grid("8/255,own", 1 / 255) == [1 / 255, 8 / 255]
    # a 1/kappa share of every sample at kappa^(1/p) eps, the rest clean
    assert paper_table.kappa_mixture(0.9, 0.5, 4) == pytest.approx(0.75 * 0.9 + 0.25 * 0.5)
    assert paper_table.kappa_mixture(0.9, 0.5, 1) == 0.5


def test_crown_options_and_the_time_cap() -> None:
    assert paper_table.parse_options("intermediate=ibp, bisection=3,lipschitz=false") == {
        "intermediate": "ibp",
        "bisection": 3,
        "lipschitz": False,
    }
    with pytest.raises(ValueError, match="key=value"):
        paper_table.parse_options("ibp")
    start = time.perf_counter()
    assert not paper_table.within(0.1, lambda: time.sleep(5))  # interrupted, not waited for
    assert time.perf_counter() - start < 2
    assert paper_table.within(5, lambda: None)


def test_core_on_a_tiny_network(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3)).eval()
    with torch.no_grad():  # decision boundaries through the box's centre: flips within reach
        model[1].bias.copy_(-model[1].weight.sum(1) / 2)
    x = torch.rand(6, 3, 2, 2)
    with torch.no_grad():
        y = model(x).argmax(1)  # every image clean-correct
    net = paper_table.NETWORKS[0]
    res = paper_table.NetworkResult(net, 6, 1.0, [0.05, 0.4])
    run = paper_table.Runner(model, x, y, lambda s: None)
    paper_table.attack_network(res, run, aa_eps=[])
    paper_table.certify_network(res, model, x, y, {}, lambda s: None)
    assert set(res.attack_skipped) == {"autoattack"}
    for e in res.eps:
        for p in paper_table.P_FINITE:
            best = res.distributional[(e, p, "best")]
            assert best <= res.distributional[(e, p, "w-pgd")] + 1e-12
            assert best <= res.distributional[(e, p, "point-wise mix")] + 1e-12
            for k in paper_table.KAPPAS:
                assert best <= res.distributional[(e, p, f"kappa {k}")] + 1e-12
        for p in (*paper_table.P_FINITE, math.inf):
            for c in ("crown", "global"):
                assert res.certified[(e, p, c)] <= res.distributional[(e, p, "best")] + 1e-12
    # the largest radius breaks something: the check is not vacuous
    assert res.distributional[(0.4, 1.0, "best")] < 1.0
    lines = paper_table.checks(res)
    assert all("False" not in line for line in lines)
    # the per-network cache holds every figure, and the document is assembled from it alone
    back = paper_table.NetworkResult.from_json(json.loads(json.dumps(res.to_json())), net)
    assert back == res
    text = paper_table.document([back], tmp_path / "paper.md")
    assert f"| {paper_table._e(0.4)} | 1 |" in text and "![sandwich" in text
    assert "| best <= W-PGD (p = 1, 2) | 4 | 4 | - |" in text  # 2 radii x p = 1, 2, all held
    assert (tmp_path / "paper" / "records" / f"{net.name}.json").is_file()


def test_skips_without_shared(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "paper.md"
    assert paper_table.main(["--shared", str(tmp_path / "none"), "--out", str(out)]) == 0
    assert "skipped" in capsys.readouterr().out
    assert not out.exists()


SHARED = next((p for p in (Path("/work/shared"), ROOT.parent / "shared") if p.is_dir()), None)


@pytest.mark.skipif(
    SHARED is None or not (SHARED / "benchmarks/vnncomp/2021_oval21").is_dir(), reason="../shared is absent"
)
def test_certified_below_attacked_on_real_cifar_images(tmp_path: Path) -> None:
    net = paper_table.NETWORKS[0]  # cifar_base_kw, the smallest
    torch.manual_seed(0)
    model = paper_table.load_network(SHARED, net)
    bench = SHARED / "benchmarks/vnncomp" / net.bench
    first = [bench / line.split(",")[1] for line in (bench / "instances.csv").read_text().splitlines()[:2]]
    mean, std = net.box_norm  # the image cache of the first two properties only (the export parses each)
    paper_table.export(
        [str(f) for f in first], (3, 32, 32), list(mean), list(std), 255, tmp_path / f"{net.bench}.npz"
    )
    data = paper_table.images(SHARED, net, tmp_path, 2)
    res = paper_table.NetworkResult(net, 2, 1.0, [data.own_eps, 8 / 255])
    run = paper_table.Runner(model, data.x, data.y, lambda s: None)
    for e in res.eps:
        run.attack("pgd", e, math.inf)
    options = {"intermediate": "ibp", "lipschitz": False, "bisection": 2}
    paper_table.certify_network(res, model, data.x, data.y, {"first-order": "-"}, lambda s: None, options)
    assert set(res.cert_skipped) == {"first-order"}
    for e in res.eps:
        for p in (*paper_table.P_FINITE, math.inf):
            attacked = run.best(paper_table.ThreatModel("linf", e, p), [("pgd", e, math.inf)])
            for c in ("crown", "global"):
                assert res.certified[(e, p, c)] <= attacked + 1e-12
    # not vacuous: pgd breaks an image at 8/255
    assert run.cache[("pgd", 8 / 255, math.inf)].robust_accuracy() < 1.0
