"""Jobs as method objects (pipeline/jobs/): store keys and specs (the store format), the methods they
build, one unit's run, the round trip result -> stored arrays -> record, and the plan's layout of units
(batches, and pieces of a certificate's batches sized by cost)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from _certify_brute import tiny_mlp

from wdrobust.certify import MILPCertificate, default_radii
from wdrobust.pipeline.config import EvalConfig
from wdrobust.pipeline.inputs import Inputs
from wdrobust.pipeline.jobs import AttackJob, CertificateJob, CleanJob, UnitTask, certificate_radii, plan
from wdrobust.pipeline.jobs.plan import Layout, batches, parts_for
from wdrobust.threat import ThreatModel

CPU = torch.device("cpu")


def test_keys_and_specs_keep_the_store_format() -> None:
    """The jobs table and unit keys of existing run folders (resume, merge) must keep matching."""
    cfg = EvalConfig(norm="l2", eps=("0.1", "1/4"), p=("2", "inf"), attacks=("pgd",), certificates=("local",))
    jobs = plan(cfg)
    assert [j.key for j in jobs] == [
        "clean",
        "attack/pgd/l2/eps=0.1/p=2",
        "attack/pgd/l2/eps=0.1/p=inf",
        "attack/pgd/l2/eps=0.25/p=2",
        "attack/pgd/l2/eps=0.25/p=inf",
        "certificate/local/l2",
    ]
    assert jobs[0].spec() == {"kind": "clean", "method": "clean"}
    assert jobs[1].spec() == {"kind": "attack", "method": "pgd", "norm": "l2", "eps": 0.1, "p": "2"}
    assert jobs[-1].spec() == {
        "kind": "certificate",
        "method": "local",
        "norm": "l2",
        "eps": 0.25,
        "p": "inf",
    }
    assert AttackJob("wda", ThreatModel("linf", 0.05, 1.5)).key == "attack/wda/linf/eps=0.05/p=1.5"
    assert [j.reads_visited for j in (CleanJob(), CertificateJob("empirical", "linf", 0.1))] == [False, True]
    assert not CertificateJob("local", "linf", 0.1).reads_visited


def test_certificate_jobs_build_with_the_union_of_the_eps_grids() -> None:
    cfg = EvalConfig(eps=("0.01", "0.05"), certificates=("milp",))
    job = plan(cfg)[-1]
    cert = job.build(cfg, tiny_mlp(0), CPU, d=2)
    union = np.union1d(default_radii("linf", 0.01, 2), default_radii("linf", 0.05, 2))
    np.testing.assert_array_equal(cert.radii, certificate_radii(cfg, 2))
    np.testing.assert_allclose(cert.radii, union)
    assert isinstance(cert, MILPCertificate) and cert.milp_radius == 0.05 and cert.norm == "linf"
    own = EvalConfig(eps=("0.05",), certificates=("milp",), certificate_options={"milp": {"radii": [0.2]}})
    assert plan(own)[-1].build(own, tiny_mlp(0), CPU, d=2).radii.tolist() == [0.2]
    bad = EvalConfig(certificates=("local",), certificate_options={"local": {"nope": 1}})
    with pytest.raises(ValueError, match="certificate 'local' has no option 'nope': accepted radii, boxes"):
        plan(bad)[-1].build(bad, tiny_mlp(0), CPU, d=2)


def test_attack_jobs_build_with_the_budget_of_the_whole_set() -> None:
    cfg = EvalConfig(eps=("0.1",), p=("2",), attacks=("wda",), attack_options={"wda": {"steps": 3}})
    job = plan(cfg)[1]
    attack = job.build(cfg, tiny_mlp(0), 7, CPU, population=40)
    assert attack.steps == 3 and attack.seed == 7 and attack.budget(8) == attack.budget(40)
    assert attack.budget(8).radius_cap(d=2) == pytest.approx(min(1.0, math.sqrt(40) * 0.1))
    with pytest.raises(ValueError, match="population"):
        attack.budget(41)


def _inputs(n: int = 6) -> Inputs:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 2, generator=gen)
    model = tiny_mlp(3)
    return Inputs(model, x, model(x).argmax(1), 3, None, n, facts={"input_dim": 2})


def test_units_round_trip_through_the_stored_arrays() -> None:
    """Two batches of widths that differ are joined into one record (columns padded)."""
    cfg = EvalConfig(
        eps=("0.1",), p=("2",), attacks=("pgd",), certificates=("local",), losses=("ce", "zero_one")
    )
    inputs = _inputs()
    _, attack, cert = plan(cfg)
    parts = [slice(0, 4), slice(4, 6)]
    clean = [CleanJob().run(UnitTask(cfg, inputs, sl, 0, CPU))[0] for sl in parts]
    assert np.concatenate([c["index"] for c in clean]).tolist() == list(range(6))
    for job in (attack, cert):
        outputs = [job.run(UnitTask(cfg, inputs, sl, 0, CPU)) for sl in parts]
        units = [
            SimpleNamespace(seconds=1.0, forward_passes=info["forward_passes"], backward_passes=2, info=info)
            for _, info in outputs
        ]
        record = job.from_arrays(job.spec(), [a for a, _ in outputs], units)
        assert record.method == job.method and record.seconds == 2.0 and record.backward_passes == 4
        if job is attack:
            assert record.t.shape[0] == 6 and (record.eps, record.p) == (0.1, 2.0)
            assert set(record.gains) == {"ce", "zero_one"} and record.flip_distance.shape == (6,)
            whole = job.build(cfg, inputs.model, 0, CPU, population=6).run(inputs.x[4:], inputs.y[4:])
            np.testing.assert_array_equal(outputs[1][0]["t"], whole.t)
        else:
            assert record.sound and outputs[0][1]["sound"] and record.majorants["ce"].n == 6
            direct = job.build(cfg, inputs.model, CPU, 2).run(inputs.x, inputs.y)
            np.testing.assert_allclose(record.majorants["ce"].slopes, direct.majorants["ce"].slopes)
            np.testing.assert_allclose(record.certified_radius, direct.certified_radius)


@pytest.mark.parametrize(
    ("n", "batch_size", "pieces"), [(10, 4, 1), (10, 4, 2), (10, 4, 3), (7, 7, 7), (5, 8, 4)]
)
def test_a_layout_covers_every_sample_once_in_order_and_pieces_stay_inside_their_batch(n, batch_size, pieces):
    layout = Layout(n, batch_size, {"certificate/crown/linf": pieces})
    for key in ("clean", "certificate/crown/linf"):
        slices = [layout.samples(key, u) for u in layout.units(key)]
        assert [i for sl in slices for i in range(sl.start, sl.stop)] == list(range(n))
        for u, sl in zip(layout.units(key), slices, strict=True):
            b = layout.batch(key, u)
            assert b * batch_size <= sl.start < sl.stop <= min((b + 1) * batch_size, n)
    assert [layout.samples("clean", u) for u in layout.units("clean")] == batches(n, batch_size)
    assert len(layout.units("certificate/crown/linf")) <= pieces * layout.n_batches()


def test_parts_for_cuts_work_per_sample_and_never_a_fixed_cost():
    assert parts_for(1.0, None, 100, target=60.0) == 1  # not measured: small enough
    assert parts_for(0.1, 0.3, 100, target=60.0) == 1  # 10 s a batch
    assert parts_for(1.0, 3.0, 100, target=60.0) == 2  # 1 s a sample, no fixed cost: pieces of 60
    assert parts_for(2.0, 6.0, 100, target=60.0) == 4  # 2 s a sample: pieces of 30
    assert parts_for(40.0, 40.2, 100, target=60.0) == 1  # a fixed cost: pieces would repeat it
    one, three, batch = 5.0, 13.0, 200  # c = 1, a = 4: pieces of 14 samples cost 57 s <= 60
    k = parts_for(one, three, batch, target=60.0)
    assert k == 15 and 1.0 + 4.0 * math.ceil(batch / k) <= 60.0
