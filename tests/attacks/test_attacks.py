"""Attacks: balls and boxes, seeds, batching, pass counts, eval mode, result type, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _attack_setup import FAST, data, tiny
from torch import nn

from wdrobust.attacks import ATTACKS, AttackResult
from wdrobust.attacks.contract import Counted as Counting
from wdrobust.threat import ThreatModel, lp_norm

POINTWISE = ("pgd", "apgd", "wda", "a3", "a3-wda", "w-pgd")


THREATS = [ThreatModel("linf", 0.1), ThreatModel("l2", 0.5), ThreatModel("l1", 1.5)]


@pytest.mark.parametrize("name", POINTWISE)
@pytest.mark.parametrize("threat", THREATS, ids=str)
def test_pointwise_attacks_stay_in_ball_and_box(name: str, threat: ThreatModel) -> None:
    x, y = data()
    result = ATTACKS[name](tiny(), threat, keep_points=True, **FAST[name]).run(x, y)
    finite = np.isfinite(result.t)
    pts = result.points
    assert pts.shape[:2] == result.t.shape and pts.min() >= 0 and pts.max() <= 1
    dist = lp_norm((pts - x[:, None]).reshape(-1, x.shape[1]).double(), threat.norm).reshape(result.t.shape)
    exact, recorded = dist.numpy()[finite], result.t[finite]
    # recorded distances are never below the exact distance of the stored points (audits stay sound)
    assert np.all(recorded >= exact) and np.all(recorded <= exact * (1 + 2e-6) + 1e-12)
    assert result.t[finite].max() <= threat.eps


@pytest.mark.parametrize("threat", THREATS, ids=str)
def test_wda_schedule_is_pointwise_at_p_inf_and_wider_below(threat: ThreatModel) -> None:
    x, y = data()
    model = tiny()
    point = ATTACKS["wda"](model, threat, **FAST["wda"]).run(x, y)
    assert np.nanmax(np.where(np.isfinite(point.t), point.t, np.nan)) <= threat.eps
    wide = ATTACKS["wda"](model, ThreatModel(threat.norm, threat.eps, 1), **FAST["wda"]).run(x, y)
    r_max = min(threat.diameter(x.shape[1]), x.shape[0] * threat.eps)
    reach = np.where(np.isfinite(wide.t), wide.t, 0).max()
    assert threat.eps < reach <= r_max


@pytest.mark.parametrize("name", [*POINTWISE, "wda++"])
def test_pass_counts_match_model_calls_and_mode_is_restored(name: str) -> None:
    x, y = data(n=23)
    model = Counting(tiny())
    model.train()
    result = ATTACKS[name](model, ThreatModel("linf", 0.1), batch_size=10, **FAST[name]).run(x, y)
    assert result.forward_passes == model.forward_count > x.shape[0]
    assert result.backward_passes == model.backward_count > 0
    assert model.training and not any(model.flags)


@pytest.mark.parametrize("name", [*POINTWISE, "wda++"])
def test_same_seed_same_result(name: str) -> None:
    x, y = data()
    runs = [ATTACKS[name](tiny(), ThreatModel("l2", 0.5), seed=3, **FAST[name]).run(x, y) for _ in range(2)]
    assert np.array_equal(runs[0].t, runs[1].t)
    assert all(np.array_equal(runs[0].gains[k], runs[1].gains[k]) for k in runs[0].gains)


def test_random_starts_depend_on_seed() -> None:
    x, y = data()
    a, b = (ATTACKS["pgd"](tiny(), ThreatModel("linf", 0.1), seed=s, steps=2).run(x, y) for s in (0, 1))
    assert not np.array_equal(a.t, b.t)


@pytest.mark.parametrize("name", ["wda", "wda++"])
def test_batching_does_not_change_deterministic_attacks(name: str) -> None:
    x, y = data(n=25)
    whole = ATTACKS[name](tiny(), ThreatModel("linf", 0.1), batch_size=100, **FAST[name]).run(x, y)
    parts = ATTACKS[name](tiny(), ThreatModel("linf", 0.1), batch_size=6, **FAST[name]).run(x, y)
    assert whole.t.shape[1] == parts.t.shape[1]
    # columns may come in another order (a batch may finish its steps early): compare each row's set
    assert np.array_equal(np.sort(whole.t, axis=1), np.sort(parts.t, axis=1))
    assert np.allclose(np.sort(whole.gains["ce"], axis=1), np.sort(parts.gains["ce"], axis=1), atol=1e-5)
    assert whole.forward_passes == parts.forward_passes
    assert np.array_equal(whole.flip_distance, parts.flip_distance)


def test_result_fields_flip_distance_and_concat() -> None:
    x, y = data(n=30)
    model = tiny()
    result = ATTACKS["wda"](model, ThreatModel("linf", 0.3), **FAST["wda"]).run(x, y)
    assert set(result.gains) == {"ce", "margin", "dlr", "zero_one"}
    assert result.clean_correct.dtype == bool and result.t.shape == result.gains["ce"].shape
    wrong = ~result.clean_correct
    assert np.all(result.flip_distance[wrong] == 0)
    zero_one = result.gains["zero_one"] + result.clean_loss["zero_one"][:, None]
    closest = np.where(zero_one > 0.5, result.t, np.inf).min(axis=1)
    assert np.array_equal(result.flip_distance[~wrong], closest[~wrong])
    assert result.robust_accuracy() == np.mean(result.flip_distance > 0.3)
    assert result.robust_accuracy() <= result.clean_correct.mean()
    joined = AttackResult.concat([result, result])
    assert joined.n == 60 and joined.forward_passes == 2 * result.forward_passes
    points = joined.attained("ce")
    assert points.t.shape == (60, result.t.shape[1] + 1)
    with pytest.raises(ValueError, match="not recorded"):
        result.attained("hinge")


def test_two_classes_cap_targets_and_reject_dlr() -> None:
    x, y = data(k=2)
    model = tiny(k=2)
    result = ATTACKS["wda"](model, ThreatModel("linf", 0.2), k=5, **{**FAST["wda"]}).run(x, y)
    assert "dlr" not in result.gains
    with pytest.raises(ValueError, match="3 classes"):
        ATTACKS["apgd"](model, ThreatModel("linf", 0.2), loss="dlr", n_iter=3).run(x, y)


def test_wda_plus_flip_distance_of_a_linear_classifier() -> None:
    """For f(x) = W x + b with two classes, the exact flip distance is -m(x) / ||w_1 - w_0||_* (inside
    the box); WDA++ returns a real misclassified point, so d_i >= exact, and bisection makes it tight."""
    torch.manual_seed(0)
    d = 10
    model = nn.Linear(d, 2)
    x = 0.4 + 0.2 * torch.rand(40, d)
    with torch.no_grad():
        model.bias.copy_(-model.weight.sum(1) / 2)  # the boundary passes through the box centre
        y = model(x).argmax(1)
    for norm in ("linf", "l2", "l1"):
        threat = ThreatModel(norm, 0.01)
        result = ATTACKS["wda++"](model, threat, bisection=20).run(x, y)
        with torch.no_grad():
            w = model.weight[1] - model.weight[0]
            m = (model(x) @ torch.tensor([1.0, -1.0])).abs()
        exact = (m / lp_norm(w[None], threat.dual)).double().numpy()
        inside = exact < 0.09 * (1 if norm != "l1" else 0.5)
        assert inside.sum() > 5
        d_i = result.flip_distance[inside]
        assert np.all(d_i >= exact[inside] - 1e-6)  # float32 logits: 1e-6 slack
        assert np.all(d_i <= exact[inside] * 1.001 + 1e-5)


def test_wda_plus_points_are_misclassified_at_their_distance() -> None:
    x, y = data(n=30)
    model = tiny()
    result = ATTACKS["wda++"](model, ThreatModel("l2", 0.2), keep_points=True).run(x, y)
    correct = result.clean_correct & np.isfinite(result.flip_distance)
    assert correct.sum() > 10
    idx = np.flatnonzero(correct)
    col = np.argmin(np.abs(result.t[idx] - result.flip_distance[idx, None]), axis=1)
    with torch.no_grad():
        pred = model.eval()(result.points[idx, col]).argmax(1)
    assert torch.all(pred != y[idx])


def test_a3_wda_probe_batches_the_targets_in_one_pass() -> None:
    x, _ = data(n=15)
    model = Counting(tiny())
    with torch.no_grad():
        y = tiny().eval()(x).argmax(1)  # clean-correct, and eps too small to break any: no probe retires
    result = ATTACKS["wda"](model, ThreatModel("linf", 1e-4), k=3, probe_steps=2, steps=1).run(x, y)
    assert np.all(result.flips() > 1e-4)
    # clean (15) + probe 2 steps + 1 final forward over 45 rows + 1 step + 1 final forward over 15 rows
    assert model.forward_count == 15 + 3 * 45 + 2 * 15
    assert model.backward_count == 2 * 45 + 15


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target": "nearest"}, "option target must be one of probe, dual_norm"),
        ({"probe_metric": "ratio"}, "option probe_metric must be one of margin, gain"),
        ({"steps": 0}, ">= 1"),
        ({"batch_size": 0}, "batch_size"),
        ({"losses": ("hinge",)}, "unknown loss"),
    ],
)
def test_bad_options_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ATTACKS["wda"](tiny(), ThreatModel("linf", 0.1), **kwargs)


def test_bad_inputs_raise() -> None:
    x, y = data()
    attack = ATTACKS["pgd"](tiny(), ThreatModel("linf", 0.1), steps=1)
    with pytest.raises(ValueError, match="box"):
        attack.run(x + 1, y)
    with pytest.raises(ValueError, match="shape"):
        attack.run(x, y[:3])
    with pytest.raises(ValueError, match="out of range"):
        attack.run(x, y + 10)
    with pytest.raises(ValueError, match="differentiable"):
        ATTACKS["pgd"](tiny(), ThreatModel("linf", 0.1), loss="zero_one")


def test_autoattack_reference_adapter() -> None:
    pytest.importorskip("pyautoattack")
    x, y = data(n=8)
    model = Counting(tiny())
    threat = ThreatModel("linf", 0.3)
    result = ATTACKS["autoattack"](model, threat).run(x, y)
    assert result.t.shape == (8, 1) and np.nanmax(result.t) <= 0.3
    assert result.forward_passes == model.forward_count and result.backward_passes == model.backward_count
    assert math.isclose(result.robust_accuracy(), 0.0)


def test_a_device_other_than_the_models_is_refused() -> None:
    with pytest.raises(ValueError, match="move the model"):
        ATTACKS["pgd"](tiny(), ThreatModel("linf", 0.1), device="meta")


def test_apgd_checkpoints_follow_the_schedule() -> None:
    from wdrobust.attacks.apgd import checkpoints

    # p = 0, 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99 (then > 1)
    assert sorted(checkpoints(100)) == [22, 41, 57, 70, 80, 87, 93, 99]


def test_sparse_l1_step_is_unit_and_box_feasible() -> None:
    from wdrobust.attacks.steps import sparse_l1_step

    g = torch.randn(6, 40)
    x = torch.rand(6, 40)
    x[:, :5] = 1.0  # at the upper face: ascent with g > 0 is blocked there
    g[:, :5] = 10.0
    u = sparse_l1_step(g, x, sparsity=0.1)
    assert torch.allclose(u.abs().sum(1), torch.ones(6))
    assert torch.all((u != 0).sum(1) == 4) and torch.all(u[:, :5] == 0)
    assert torch.all(u * g >= 0)


def test_a3_discarding_saves_passes() -> None:
    x, y = data(n=40)
    threat = ThreatModel("linf", 0.02)
    keep = ATTACKS["a3"](tiny(), threat, restarts=3, n_iter=5, discard=1e9).run(x, y)
    drop = ATTACKS["a3"](tiny(), threat, restarts=3, n_iter=5, discard=1e-9).run(x, y)
    assert drop.forward_passes < keep.forward_passes
    assert drop.robust_accuracy() >= keep.robust_accuracy() - 0.1


def test_autoattack_reference_view_gives_square_an_image_it_can_tile() -> None:
    from wdrobust.attacks.autoattack import reference_view

    assert reference_view((3, 32, 32), "l2") == (3, 32, 32)
    assert reference_view((1, 4, 4), "linf") == (1, 4, 4)
    assert reference_view((64,), "linf") == (1, 1, 64)
    assert reference_view((64,), "l2") == (1, 8, 8)
    assert reference_view((2, 4, 6), "l1") == (1, 6, 8)  # 48 features: the most square factorisation
    for shape in ((12,), (1, 4, 4), (7,)):
        with pytest.raises(ValueError, match="Square attack under l2"):
            reference_view(shape, "l2")


def test_autoattack_reference_square_runs_on_the_view_of_non_image_inputs() -> None:
    square = pytest.importorskip("pyautoattack.square")
    from wdrobust.attacks.autoattack import reference_view

    x, y = (t[1:3] for t in data(n=3, d=25))  # labels the model's own (data moves every fourth)
    model = tiny(d=25).eval()
    view = reference_view((25,), "l2")  # (1, 5, 5); the old (1, 1, 25) divided by zero (side 1 // 5)
    images = x.reshape(2, *view)
    attack = square.SquareAttack(lambda v: model(v.reshape(-1, 25)), n_queries=20, eps=0.05, norm="L2")
    x_adv = attack.perturb(images, y)
    assert x_adv.shape == images.shape
    assert float((x_adv - images).flatten(1).norm(dim=1).max()) <= 0.05 + 1e-6
    with pytest.raises(ValueError, match="Square attack under l2"):
        ATTACKS["autoattack"](tiny(), ThreatModel("l2", 0.05)).run(*data(n=2))


@pytest.mark.parametrize("name", ["a3", "a3-wda"])
def test_a3_records_the_margin_its_discarding_reads_whatever_losses_ask(name: str) -> None:
    x, y = data()
    result = ATTACKS[name](tiny(), ThreatModel("linf", 0.1), losses=("zero_one",), **FAST[name]).run(x, y)
    assert set(result.gains) == {"zero_one", "margin"}  # was a KeyError on 'margin' in OSD
    full = ATTACKS[name](tiny(), ThreatModel("linf", 0.1), **FAST[name]).run(x, y)
    assert np.array_equal(result.t, full.t, equal_nan=True)


def test_a3_wda_probes_the_targets_in_doubling_stages_on_the_samples_left_unbroken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import wdrobust.attacks.a3 as a3
    from wdrobust.attacks.batch import Batch

    stages: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def spy(batch: Batch, rows: torch.Tensor, targets: torch.Tensor, *rule: object) -> torch.Tensor:
        stages.append((rows.clone(), targets.clone(), batch.recorder.flip.clone()))
        return rank(batch, rows, targets, *rule)

    rank = a3.rank_targets
    monkeypatch.setattr(a3, "rank_targets", spy)
    x, y = data(n=20, k=10)
    threat = ThreatModel("linf", 0.05)
    model = tiny(k=10)
    ATTACKS["a3-wda"](model, threat, **{**FAST["a3-wda"], "k": 9}).run(x, y)
    with torch.no_grad():
        top = model.eval()(x).scatter(1, y[:, None], -math.inf).topk(9, dim=1).indices
    assert [t.shape[1] for _, t, _ in stages] == [1, 2, 4, 2][: len(stages)] and len(stages) >= 2
    start = 0
    for rows, targets, flip in stages:
        assert torch.equal(rows, torch.nonzero(flip > threat.eps).squeeze(1))  # the unbroken, no others
        assert torch.equal(targets, top[rows, start : start + targets.shape[1]])  # the next clean targets
        start += targets.shape[1]
    assert stages[-1][0].numel() < stages[0][0].numel() < x.shape[0]  # stages shed broken samples


def test_a3_wda_probes_the_other_targets_of_the_samples_its_top_target_left_unbroken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from wdrobust.attacks.a3 import A3WDA

    x, y = data()
    threat = ThreatModel("linf", 0.08)
    options = {**FAST["a3-wda"], "k": 3}
    staged = ATTACKS["a3-wda"](tiny(), threat, **options).run(x, y)
    monkeypatch.setattr(
        A3WDA, "prepare", lambda self, batch: setattr(self, "ranked", self.wda.ranked_targets(batch))
    )
    one_shot = ATTACKS["a3-wda"](tiny(), threat, **options).run(x, y)
    robust = one_shot.flips() > threat.eps
    assert 0 < robust.sum() < robust.size - 5  # some samples survive, several break
    assert np.array_equal(staged.flips() > threat.eps, robust)
    best = lambda r: np.where(r.t <= threat.eps, r.gains["margin"], -np.inf).max(1)  # noqa: E731
    assert np.array_equal(best(staged)[robust], best(one_shot)[robust])  # the survivors' runs are the same
    assert staged.forward_passes < one_shot.forward_passes
