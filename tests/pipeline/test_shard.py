"""Sharded evaluation (--shard I/K), `wdrobust merge`, and sample selection (--offset, --indices)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
from _cli import MEDIUM, invoke, one_line_error, strip_timing

from wdrobust.pipeline import EvalConfig, build_config, config_hash
from wdrobust.pipeline.config import canonical
from wdrobust.pipeline.jobs import AttackJob, CertificateJob, CleanJob, units
from wdrobust.pipeline.jobs.plan import Layout
from wdrobust.threat import ThreatModel


def results(folder):
    return strip_timing(json.loads((folder / "results.json").read_text()))


def unit_count(folder):
    with sqlite3.connect(folder / "store.sqlite") as conn:
        return conn.execute("SELECT COUNT(*) FROM units").fetchone()[0]


def test_shards_cover_every_unit_once_round_robin_over_batches():
    jobs = [CleanJob(), AttackJob("pgd", ThreatModel()), AttackJob("wda", ThreatModel())]
    every = units(jobs, Layout(60, 10))
    parts = [units(jobs, Layout(60, 10), (i, 3)) for i in (1, 2, 3)]
    names = [(j.method, b) for part in parts for j, b in part]
    assert sorted(names) == sorted((j.method, b) for j, b in every)
    assert [len(p) for p in parts] == [6, 6, 6]
    for i, part in enumerate(parts):  # batches round-robin, every job of a batch in one shard
        assert {b for _, b in part} == {i, i + 3}
        assert {(j.method, b) for j, b in part} == {(j.method, b) for j in jobs for b in (i, i + 3)}


def test_a_cut_certificate_keeps_its_pieces_in_the_shard_of_their_batch():
    crown = CertificateJob("crown", "linf", 0.1)
    layout = Layout(50, 20, {crown.key: 3})  # batches of 20, 20, 10; pieces of at most 7 samples
    every = units([CleanJob(), crown], layout)
    for i in (1, 2):
        shard = units([CleanJob(), crown], layout, (i, 2))
        batches_here = {b for job, b in shard if job.kind == "clean"}
        assert {layout.batch(crown.key, u) for job, u in shard if job is crown} == batches_here
    assert sorted(u for job, u in every if job is crown) == [0, 1, 2, 3, 4, 5, 6, 7]


def test_shards_then_merge_equal_the_single_run(tmp_path):
    single, s1, s2, merged = (tmp_path / name for name in ("single", "s1", "s2", "merged"))
    assert invoke("evaluate", *MEDIUM, "--out", single).exit_code == 0
    first = invoke("evaluate", *MEDIUM, "--shard", "1/2", "--out", s1)
    assert first.exit_code == 0 and "shard 1/2 stored" in first.output
    assert not (s1 / "results.json").exists()  # a shard alone is not a report

    # a merge of one shard: the units are copied, the missing ones listed, no report yet
    partial = invoke("merge", s1, "--out", merged)
    assert partial.exit_code == 0, partial.output
    total = unit_count(single)
    assert f"missing {total - unit_count(s1)} units" in partial.output
    assert "no report yet" in partial.output and not (merged / "results.json").exists()

    assert invoke("evaluate", *MEDIUM, "--shard", "2/2", "--out", s2).exit_code == 0
    assert unit_count(s1) + unit_count(s2) == total
    done = invoke("merge", s1, s2, "--out", merged)
    assert done.exit_code == 0, done.output
    assert f"{unit_count(s2)} units copied" in done.output and "missing" not in done.output
    assert results(merged) == results(single)

    again = invoke("merge", s1, s2, "--out", merged)  # idempotent
    assert again.exit_code == 0 and "0 units copied" in again.output
    assert unit_count(merged) == total and results(merged) == results(single)


def test_merge_refuses_shards_of_other_runs(tmp_path):
    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "out"
    assert invoke("evaluate", *MEDIUM, "--shard", "1/2", "--out", a).exit_code == 0
    other = [*MEDIUM[:-1], "--seed", "1", "--quiet"]
    assert invoke("evaluate", *other, "--shard", "2/2", "--out", b).exit_code == 0
    one_line_error(invoke("merge", a, b, "--out", out), "another configuration", "not shards of one run")
    assert not out.exists()
    one_line_error(invoke("merge", a, a, "--out", out), "listed twice")
    one_line_error(invoke("merge", a, "--out", a), "one of the folders to merge")
    one_line_error(invoke("merge", tmp_path / "nothing", "--out", out), "not a wdrobust run folder")
    assert not out.exists()
    if Path("/proc/self").is_dir():  # an unwritable --out names the real reason, not "No such file"
        one_line_error(invoke("merge", a, "--out", "/proc/merged"), "/proc/merged", "not writable")


def test_a_shard_folder_keeps_its_shard(tmp_path):
    s1 = tmp_path / "s1"
    assert invoke("evaluate", *MEDIUM, "--shard", "1/2", "--out", s1).exit_code == 0
    one_line_error(
        invoke("evaluate", *MEDIUM, "--shard", "2/2", "--out", s1), "holds shard 1/2", "not shard 2/2"
    )
    one_line_error(invoke("evaluate", *MEDIUM, "--out", s1), "holds shard 1/2", "not the whole run")
    resumed = invoke("evaluate", *MEDIUM, "--shard", "1/2", "--out", s1)
    assert resumed.exit_code == 0 and unit_count(s1) > 0
    one_line_error(invoke("evaluate", *MEDIUM, "--shard", "3/2", "--out", tmp_path / "x"), "1 <= I <= K")
    one_line_error(invoke("evaluate", *MEDIUM, "--shard", "half", "--out", tmp_path / "x"), "I/K")


def test_indices_and_offset_select_the_same_samples(tmp_path):
    listed = tmp_path / "idx.txt"
    listed.write_text("# samples 5 .. 20\n" + "\n".join(f"{i}," for i in range(5, 21)))
    flags = [f for f in MEDIUM if f not in ("--n", "16")]
    by_list = invoke("evaluate", *flags, "--indices", listed, "--out", tmp_path / "list")
    by_offset = invoke("evaluate", *flags, "--offset", "5", "--n", "16", "--out", tmp_path / "offset")
    assert by_list.exit_code == 0 and by_offset.exit_code == 0, by_list.output + by_offset.output
    a, b = results(tmp_path / "list"), results(tmp_path / "offset")
    assert a["n"] == b["n"] == 16
    assert a["threat_models"] == b["threat_models"] and a["clean"] == b["clean"]
    plain = invoke("evaluate", *flags, "--n", "16", "--out", tmp_path / "first16")
    assert plain.exit_code == 0
    assert results(tmp_path / "first16")["clean"]["loss"] != a["clean"]["loss"]  # other samples


def test_selection_errors(tmp_path):
    listed = tmp_path / "idx.txt"
    listed.write_text("3 4 5")
    out = tmp_path / "out"
    flags = [f for f in MEDIUM if f not in ("--n", "16")]
    one_line_error(invoke("evaluate", *flags, "--indices", listed, "--n", "5", "--out", out), "disagrees")
    one_line_error(invoke("evaluate", *flags, "--indices", listed, "--offset", "2", "--out", out), "give one")
    one_line_error(invoke("evaluate", *flags, "--offset", "-1", "--out", out), "offset must be >= 0")
    one_line_error(invoke("evaluate", *flags, "--offset", "450", "--out", out), "beyond the 450 samples")
    listed.write_text("3 4 3")
    one_line_error(invoke("evaluate", *flags, "--indices", listed, "--out", out), "listed twice")
    listed.write_text("3 x")
    one_line_error(invoke("evaluate", *flags, "--indices", listed, "--out", out), "'x' is not an integer")
    listed.write_text("3 999")
    one_line_error(invoke("evaluate", *flags, "--indices", listed, "--out", out), "999 is out of range")
    np.save(tmp_path / "idx.npy", np.array([0.5, 1.5]))
    one_line_error(
        invoke("evaluate", *flags, "--indices", tmp_path / "idx.npy", "--out", out), "integer array"
    )
    one_line_error(invoke("evaluate", *flags, "--indices", tmp_path / "none.txt", "--out", out), "not found")
    assert not out.exists()


def test_new_selection_fields_keep_old_config_hashes():
    """offset = 0 and no indices are left out of the canonical form: earlier run folders still resume."""
    cfg = build_config()
    assert not {"offset", "indices", "shard"} & set(canonical(cfg))
    assert canonical(EvalConfig(offset=3))["offset"] == 3
    assert config_hash(EvalConfig(shard="1/2")) == config_hash(EvalConfig())


def test_empirical_in_a_sharded_run_reads_its_own_shard(tmp_path):
    """empirical reads the attacks' points of its batch: a shard holds every job of its batches."""
    flags = ["--n", "8", "--batch-size", "2", "--eps", "0.1", "--p", "inf", "--attacks", "pgd",
             "--certificates", "empirical", "--quiet"]  # fmt: skip
    for i in (1, 2):
        done = invoke("evaluate", *flags, "--shard", f"{i}/2", "--out", tmp_path / f"s{i}")
        assert done.exit_code == 0, done.output
    assert invoke("merge", tmp_path / "s1", tmp_path / "s2", "--out", tmp_path / "merged").exit_code == 0
    assert invoke("evaluate", *flags, "--out", tmp_path / "single").exit_code == 0
    merged, single = results(tmp_path / "merged"), results(tmp_path / "single")
    assert merged == single
    assert "empirical" in merged["threat_models"][0]["losses"]["ce"]["upper"]
