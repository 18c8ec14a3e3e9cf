"""The SQLite run store: WAL mode, exact array round trips, one transaction per unit, no double storage."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from wdrobust.pipeline.store import Store, read_meta, stored_jobs


def test_arrays_round_trip_and_units(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        store.set_meta({"config_hash": "abc", "facts": {"n": 3}})
        session = store.begin_session()
        rng = np.random.default_rng(0)
        arrays = {
            "t": rng.random((3, 4)),
            "gain.ce": rng.standard_normal((3, 4)).astype(np.float32),
            "correct": np.array([True, False, True]),
            "index": np.arange(3),
        }
        arrays["t"][0, 1] = np.inf
        store.put_unit(
            "attack/x", 0, arrays, started=1.0, seconds=0.5, forward_passes=7, info={"sound": True}
        )
        back = store.arrays("attack/x", 0)
        assert back["t"].dtype == np.float64
        np.testing.assert_array_equal(back["t"], arrays["t"])
        np.testing.assert_array_equal(back["gain.ce"], arrays["gain.ce"].astype(np.float64))
        np.testing.assert_array_equal(back["correct"].astype(bool), arrays["correct"])
        np.testing.assert_array_equal(back["index"], np.arange(3))
        (unit,) = store.units()
        assert (unit.job, unit.batch, unit.session, unit.forward_passes) == ("attack/x", 0, session, 7)
        assert unit.info == {"sound": True}
        assert store.finished() == {("attack/x", 0)}
        assert store.get_meta("facts") == {"n": 3}


def test_finished_unit_cannot_be_stored_twice_and_failed_unit_leaves_nothing(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        store.begin_session()
        store.put_unit("clean", 0, {"y": np.arange(2)}, started=0.0, seconds=0.0)
        with pytest.raises(sqlite3.IntegrityError):
            store.put_unit("clean", 0, {"y": np.arange(2)}, started=0.0, seconds=0.0)
        # an unsupported array aborts before the transaction; a duplicate name inside it rolls back
        with pytest.raises(ValueError, match="dtype"):
            store.put_unit("clean", 1, {"y": np.array(["a"])}, started=0.0, seconds=0.0)
        assert store.finished() == {("clean", 0)}
    with Store(tmp_path / "s.sqlite") as store:
        assert store.finished() == {("clean", 0)}
        assert store.arrays("clean", 1) == {}


def test_reading_a_closed_store_creates_no_files_beside_it(tmp_path):
    """read_meta / stored_jobs on a store no process has open leave the folder byte for byte as it was
    (a read-only SQLite connection would create -wal and -shm files and could not remove them)."""
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.set_meta({"config_hash": "abc"})
        store.begin_session()
        store.put_unit("clean", 0, {"y": np.arange(2)}, started=0.0, seconds=0.0)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert list(before) == ["s.sqlite"]
    assert read_meta(path, "config_hash") == "abc"
    assert stored_jobs(path) == {"clean"}
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_reading_a_store_a_live_process_writes_sees_its_wal_and_keeps_it(tmp_path):
    """While another connection has committed transactions only in its WAL, a read sees them, and the
    writer's -wal and -shm files stay (removing them would lose its transactions)."""
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.set_meta({"config_hash": "abc"})
        store.begin_session()
        store.put_unit("clean", 0, {"y": np.arange(2)}, started=0.0, seconds=0.0)
        assert (tmp_path / "s.sqlite-wal").stat().st_size > 0  # not checkpointed yet
        assert read_meta(path, "config_hash") == "abc"
        assert stored_jobs(path) == {"clean"}
        assert {p.name for p in tmp_path.iterdir()} == {"s.sqlite", "s.sqlite-wal", "s.sqlite-shm"}
        store.put_unit("clean", 1, {"y": np.arange(2)}, started=0.0, seconds=0.0)
    with Store(path) as store:
        assert store.finished() == {("clean", 0), ("clean", 1)}
