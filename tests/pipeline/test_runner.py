"""A small real evaluation (digits default model, real attacks and certificates): bounds are ordered,
outputs are written, re-running resumes without recomputation, changed configurations are refused."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from wdrobust.pipeline import Store, build_config, load_records, run
from wdrobust.pipeline.aggregate import best_flip_distances
from wdrobust.report import build_results, render

TOL = 1e-9


def small_config(out, **flags):
    base = dict(
        n=24,
        batch_size=12,
        eps="0.05,0.1",
        p="1,2,inf",
        attacks="wda,wda++",
        certificates="global,first-order,local,radius,crown",
        out=str(out),
        quiet=True,
    )
    return build_config(**(base | flags))


def test_small_run(tmp_path):
    """One small run (a module fixture would run once per xdist worker), checked from several sides."""
    cfg = small_config(tmp_path / "small")
    outcome = run(cfg)
    rendered = render(outcome.run_dir)
    small_run = (cfg, outcome, rendered, json.loads(rendered.results.read_text()))
    check_lower_bounds_below_every_sound_upper_bound(small_run)
    check_combined_is_the_best_sound_bound(small_run)
    check_budget_audit_and_accuracy_band(small_run)
    check_pointwise_accuracy_matches_flip_distances(small_run)
    check_outputs_written(small_run)
    check_rerun_resumes_and_aggregates_the_same(small_run)


def entries(results):
    for tm in results["threat_models"]:
        for loss, entry in tm["losses"].items():
            yield tm, loss, entry


def check_lower_bounds_below_every_sound_upper_bound(small_run):
    *_, results = small_run
    checked = 0
    for tm, loss, entry in entries(results):
        lowers = [v["value"] for v in entry["lower"]["attacks"].values()]
        best = entry["lower"]["best"]["value"]
        assert best >= max(lowers) - TOL, (tm, loss)  # pooling attained points never loses
        assert best >= entry["clean"] - TOL
        for name, up in entry["upper"].items():
            if up["sound"]:
                assert best <= up["value"] + TOL, (tm["eps"], tm["p"], loss, name)
                checked += 1
        if entry["best_sound_upper"] is not None:
            assert entry["gap"] >= -TOL
    assert checked >= 2 * 3 * 3  # every (eps, p, loss) has a sound certificate


def check_combined_is_the_best_sound_bound(small_run):
    """The combined certificate (pointwise minimum of the sound majorants, largest certified radius) is
    at most every sound certificate's bound, and it is the reported best."""
    *_, results = small_run
    seen = 0
    for tm, loss, entry in entries(results):
        combined = entry["upper"]["combined"]
        assert combined["sound"] and {"local", "crown"} <= set(combined["methods"])
        for name, up in entry["upper"].items():
            if up["sound"] and name in combined["methods"]:
                assert combined["value"] <= up["value"] + TOL, (tm["eps"], tm["p"], loss, name)
        assert entry["best_sound_upper"]["method"] == "combined"
        seen += 1
    assert seen == 2 * 3 * 3


def check_budget_audit_and_accuracy_band(small_run):
    *_, results = small_run
    for tm, loss, entry in entries(results):
        for v in [*entry["lower"]["attacks"].values(), entry["lower"]["best"]]:
            assert v["budget_ok"] and v["budget"] <= tm["eps"] * (1 + 1e-9) + 1e-12
        if loss == "zero_one":
            acc = entry["accuracy"]
            assert acc["lower"] <= acc["upper"] + TOL <= acc["clean"] + 2 * TOL


def check_pointwise_accuracy_matches_flip_distances(small_run):
    _, outcome, _, results = small_run
    with Store(outcome.run_dir / "store.sqlite") as store:
        records = load_records(store)
    flips = best_flip_distances(records)
    for tm in results["threat_models"]:
        if tm["p"] == "inf":
            expected = np.mean(records.correct & (flips > tm["eps"]))
            assert math.isclose(tm["losses"]["zero_one"]["accuracy"]["upper"], expected, abs_tol=1e-12)


def check_outputs_written(small_run):
    _, outcome, rendered, results = small_run
    assert results["schema"] == "wdrobust/results/v1"
    assert results["n"] == 24 and results["incomplete_jobs"] == []
    assert {"global", "local", "radius", "first-order"} <= set(results["methods"]["certificates"])
    assert results["methods"]["certificates"]["first-order"]["sound"] is False
    text = rendered.report.read_text()
    assert "Risk band, loss `ce`" in text and "estimate" in text and "sound" in text
    names = {p.name for p in rendered.plots}
    assert {"risk_vs_eps_ce.png", "risk_vs_eps_zero_one.png", "radii.png", "lipschitz.png"} <= names
    for p in rendered.plots:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (outcome.run_dir / "run.log").read_text().count("stored") == outcome.computed


def check_rerun_resumes_and_aggregates_the_same(small_run):
    cfg, first, _, results = small_run
    again = run(cfg)
    assert again.computed == 0 and again.resumed == first.computed
    with Store(first.run_dir / "store.sqlite") as store:
        units = store.units()
        assert {u.session for u in units} == {1}
        assert len(units) == first.computed
        rebuilt = build_results(load_records(store)).to_dict()
    assert json.loads(json.dumps(rebuilt)) == results  # wdrobust report re-renders: test_cli_evaluate


def test_changed_config_is_refused_then_forced(tmp_path):
    out = tmp_path / "r"
    tiny = dict(n=4, batch_size=4, eps="0.1", p="inf", attacks="wda++", certificates="global")
    run(small_config(out, **tiny))
    with pytest.raises(ValueError, match="different configuration"):
        run(small_config(out, **(tiny | {"seed": 1})))
    outcome = run(small_config(out, **(tiny | {"seed": 1})), force=True)
    assert outcome.resumed == 0 and outcome.computed > 0
    with Store(out / "store.sqlite") as store:
        assert store.get_meta("config")["seed"] == 1


def test_resume_refuses_changed_data(tmp_path):
    path = tmp_path / "data.npz"
    cfg = small_config(
        tmp_path / "r",
        n=4,
        batch_size=4,
        eps="0.1",
        p="inf",
        attacks="wda++",
        certificates="global",
        data=str(path),
    )
    np.savez(path, x=np.random.default_rng(0).random((80, 64)), y=np.arange(80) % 10)
    run(cfg)
    np.savez(path, x=np.random.default_rng(1).random((80, 64)), y=np.arange(80) % 10)  # same config, new data
    with pytest.raises(ValueError, match="evaluated data changed"):
        run(cfg)


def test_the_checked_first_sample_joins_the_first_certificate_unit(tmp_path):
    """Each certificate runs on the first sample before the run folder exists; that result joins its first
    unit instead of being paid twice, and the joined unit equals the unit computed whole (to float32
    rounding: the kernels of a batch of 1 and of 3 round differently)."""
    import torch

    from wdrobust.pipeline.inputs import evaluation_inputs
    from wdrobust.pipeline.jobs import CertificateJob, UnitTask, plan
    from wdrobust.pipeline.jobs.certificate import majorants_of
    from wdrobust.pipeline.runner import join_first

    cfg = small_config(tmp_path / "run", n=6, batch_size=3, eps="0.1", attacks="pgd")
    run(cfg)
    log = (tmp_path / "run" / "run.log").read_text()
    for name in ("attack 'pgd'", "certificate 'crown'", "certificate 'global'"):
        assert f"checked {name} on the first sample" in log
    joined = re.findall(r"unit (\S+) batch 0 stored \([\d.]+ s; samples from the check reused\)", log)
    assert sorted(joined) == sorted(
        f"certificate/{m}/linf" for m in ("global", "first-order", "local", "radius", "crown")
    )
    inputs = evaluation_inputs(cfg, torch.device("cpu"))
    certificates = [job for job in plan(cfg) if isinstance(job, CertificateJob)]
    assert len(certificates) == 5
    grid = np.tile(np.linspace(0.0, 1.0, 400), (3, 1))  # t in [0, diam X] for each of the 3 samples
    with Store(tmp_path / "run" / "store.sqlite") as store:
        for job in certificates:
            stored = store.arrays(job.key, 0)
            whole, _ = job.run(UnitTask(cfg, inputs, slice(0, 3), 0, torch.device("cpu")))
            assert set(stored) == set(whole), job.key
            for key, value in whole.items():
                if not key.startswith("major."):
                    np.testing.assert_allclose(stored[key], value, rtol=1e-5, err_msg=job.key + key)
            for loss, majorant in majorants_of(whole).items():  # the same phibar, knots may differ
                np.testing.assert_allclose(
                    majorants_of(stored)[loss].at(grid), majorant.at(grid), rtol=1e-5, atol=1e-5
                )
    one = ({"r": np.zeros(1)}, {"sound": True, "note": "a", "seconds_method": 1.0})
    two = ({"r": np.ones(2)}, {"sound": False, "note": "a", "seconds_method": 2.0})
    arrays, info = join_first(one, two)
    assert arrays["r"].tolist() == [0, 1, 1]
    assert info == {"sound": False, "note": "a", "seconds_method": 3.0}
    assert join_first(({"k": np.zeros((4, 4))}, {}), ({"k": np.zeros((4, 4))}, {})) is None  # not per sample


def test_certificate_batches_cut_by_cost_give_the_same_results_and_resume(tmp_path, monkeypatch):
    """A certificate estimated above UNIT_SECONDS a batch is cut into pieces (here forced: 2 a batch):
    the pieces are recorded in the store, the checked samples fill the first pieces, a certificate that
    reads the attacks' points (never checked alone) stays whole, the results equal the uncut run's (to float32
    rounding, batches of other sizes), and a resumed cut run recomputes only the missing piece, to
    identical results."""
    import sqlite3

    from _cli import strip_timing

    from wdrobust.pipeline import runner

    flags = dict(n=6, batch_size=3, eps="0.1", p="2", attacks="pgd", certificates="crown,local,empirical")
    whole = small_config(tmp_path / "whole", **flags)
    run(whole)
    expected = json.loads(render(tmp_path / "whole").results.read_text())
    monkeypatch.setattr(runner, "UNIT_SECONDS", 0.0)
    monkeypatch.setattr(runner, "parts_for", lambda one, three, batch, target: 2)
    cut = small_config(tmp_path / "cut", **flags)
    run(cut)
    with Store(tmp_path / "cut" / "store.sqlite") as store:
        assert store.get_meta("unit_parts") == {"certificate/crown/linf": 2, "certificate/local/linf": 2}
        crown = sorted(u.batch for u in store.units("certificate/crown/linf"))
        assert crown == [0, 1, 2, 3]  # batch b, piece j = unit 2 b + j: samples 0-1, 2, 3-4, 5
        sizes = [len(store.arrays("certificate/crown/linf", u)["certified_radius"]) for u in crown]
        assert sizes == [2, 1, 2, 1]
        assert len(store.units("certificate/empirical/linf")) == 2  # never checked alone: not cut
    log = (tmp_path / "cut" / "run.log").read_text()
    assert "certificate/crown/linf: every batch cut into 2 units" in log
    assert "unit certificate/crown/linf batch 1 samples 3-4 stored" in log
    got = json.loads(render(tmp_path / "cut").results.read_text())
    compare(strip_timing(got), strip_timing(expected))
    with sqlite3.connect(tmp_path / "cut" / "store.sqlite") as conn:  # lose the last piece of crown
        conn.execute("DELETE FROM arrays WHERE job = 'certificate/crown/linf' AND batch = 3")
        conn.execute("DELETE FROM units WHERE job = 'certificate/crown/linf' AND batch = 3")
    outcome = run(cut)
    assert outcome.computed == 1
    assert strip_timing(json.loads(render(tmp_path / "cut").results.read_text())) == strip_timing(got)


def compare(got, expected, path="$"):
    """Two results documents equal up to float32 rounding of their numbers (rtol 1e-5)."""
    if isinstance(expected, dict):
        assert got.keys() == expected.keys(), path
        for key in expected:
            compare(got[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(got) == len(expected), path
        for i, (a, b) in enumerate(zip(got, expected, strict=True)):
            compare(a, b, f"{path}[{i}]")
    elif isinstance(expected, float) and isinstance(got, float):
        assert math.isclose(got, expected, rel_tol=1e-5, abs_tol=1e-6), (path, got, expected)
    else:
        assert got == expected, path
