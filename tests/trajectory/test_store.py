"""RunStore: idempotent keys, thread safety, integrity checks and version gates."""

from __future__ import annotations

import math
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from reasonloop.errors import ConfigError, StoreError
from reasonloop.trajectory import (
    SCHEMA_VERSION,
    STORE_VERSION,
    Reward,
    RunStore,
    UnreadableRowError,
)


def test_put_get_round_trip_and_columns(store, make_trajectory):
    traj = make_trajectory(rewards=[Reward(name="a", value=0.25), Reward(name="b", value=0.5)])
    assert store.put(traj) is True
    got = store.get(traj.id)
    assert got is not None and got.model_dump_json() == traj.model_dump_json()
    assert store.get("missing") is None
    [row] = list(store.iter_episodes())
    assert (row.row_id, row.run_id, row.task_id, row.status, row.agent, row.model) == (
        1, "run-a", "task-0", "finished", "react", "tiny",
    )  # fmt: skip
    assert (row.reward, row.n_steps, row.n_tool_calls, row.n_tokens) == (0.75, 4, 1, 3 + 12 + 5)


def test_put_twice_keeps_one_row(store, make_trajectory):
    traj = make_trajectory()
    assert store.put(traj) is True
    assert store.put(traj) is False
    # Same key, new id (a re-run of an episode already stored): the first one stays.
    rerun = make_trajectory(final_answer="41")
    assert rerun.id != traj.id and store.put(rerun) is False
    assert store.count() == 1
    assert store.get(traj.id).final_answer == "42" and store.get(rerun.id) is None


def test_seed_none_is_its_own_key_value(store, make_trajectory):
    assert store.put(make_trajectory(seed=None))
    assert not store.put(make_trajectory(seed=None))
    assert store.put(make_trajectory(seed=0))
    assert store.put(make_trajectory(seed=-1))
    assert not store.put(make_trajectory(seed=0))
    assert store.count() == 3
    assert store.has("run-a", "task-0", 0, None) and store.has("run-a", "task-0", 0, 0)
    assert not store.has("run-a", "task-0", 0, 7) and not store.has("run-a", "task-0", 1, None)
    assert store.finished_keys("run-a") == {("run-a", "task-0", 0, s) for s in (None, 0, -1)}
    assert store.finished_keys("other") == set()


def test_same_id_under_another_key_is_refused(store, make_trajectory):
    first = make_trajectory(sample=0)
    store.put(first)
    clash = make_trajectory(sample=1).model_copy(update={"id": first.id})
    with pytest.raises(StoreError, match="already stored under another key"):
        store.put(clash)
    assert store.count() == 1


def test_running_trajectory_refused(store, make_trajectory):
    with pytest.raises(StoreError, match="still running"):
        store.put(make_trajectory(status="running"))
    with pytest.raises(StoreError, match="still running"):
        store.put_many([make_trajectory(sample=1), make_trajectory(sample=2, status="running")])
    assert store.count() == 0  # put_many is all or none


def test_key_outside_int64_refused(store, make_trajectory):
    with pytest.raises(StoreError, match="64-bit"):
        store.put(make_trajectory(seed=2**64))
    assert store.count() == 0


def test_put_many_counts_new_rows_in_one_transaction(store, make_trajectory):
    batch = [make_trajectory(sample=i) for i in range(5)]
    assert store.put_many(batch) == 5
    assert store.put_many([*batch[:2], make_trajectory(sample=5), make_trajectory(sample=5)]) == 1
    assert store.count("run-a") == 6


def test_iteration_order_filters_and_limit(store, make_trajectory):
    order = [("r1", "t1"), ("r2", "t1"), ("r1", "t2"), ("r1", "t1")]
    trajs = [make_trajectory(run_id=r, task_id=t, sample=i) for i, (r, t) in enumerate(order)]
    for traj in trajs:
        store.put(traj)
    assert [t.id for t in store.iter_trajectories()] == [t.id for t in trajs]
    assert [t.sample for t in store.iter_trajectories(run_id="r1")] == [0, 2, 3]
    assert [t.sample for t in store.iter_trajectories(run_id="r1", task_id="t1")] == [0, 3]
    assert [t.sample for t in store.iter_trajectories(limit=2)] == [0, 1]
    assert list(store.iter_trajectories(limit=0)) == []
    with pytest.raises(ConfigError):
        list(store.iter_trajectories(limit=-1))


def test_iteration_pages_through_many_rows(store, make_trajectory):
    # More rows than one page (128) so the keyset pagination is exercised.
    store.put_many([make_trajectory(sample=i) for i in range(300)])
    assert [t.sample for t in store.iter_trajectories()] == list(range(300))
    assert [r.sample for r in store.iter_episodes(limit=129)] == list(range(129))


def test_runs_summary_and_delete(store, make_trajectory):
    store.put(make_trajectory(run_id="r1", sample=0, rewards=[Reward(name="c", value=1.0)]))
    store.put(make_trajectory(run_id="r1", sample=1, rewards=[], model="big", status="truncated"))
    store.put(make_trajectory(run_id="r1", sample=2, rewards=[Reward(name="c", value=math.nan)]))
    store.put(make_trajectory(run_id="r0", sample=0, agent="plan"))
    r1, r0 = store.runs()
    assert (r1.run_id, r1.episodes, r1.mean_reward) == ("r1", 3, 0.5)  # the NaN reward is left out
    assert r1.models == ("big", "tiny") and r1.agents == ("react",)
    assert r1.statuses == {"finished": 2, "truncated": 1}
    assert r1.first_created_at <= r1.last_created_at
    assert (r0.run_id, r0.episodes, r0.agents) == ("r0", 1, ("plan",))
    assert store.delete_run("r1") == 3
    assert store.delete_run("r1") == 0
    assert [r.run_id for r in store.runs()] == ["r0"] and store.count() == 1


def test_threads_put_concurrently_without_loss_or_duplicates(store, make_trajectory):
    trajs = [make_trajectory(task_id=f"t{i % 20}", sample=i // 20) for i in range(200)]
    results: list[bool] = []
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            # Every thread tries every episode, in a different order: 8 writers per key.
            for i in range(200):
                results.append(store.put(trajs[(i + offset * 25) % 200]))
                if i % 50 == 0:
                    store.count()
                    store.has("run-a", "t0", 0, None)
        except BaseException as exc:  # surfaced below; a thread's exception is lost otherwise
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(results) == 200 and len(results) == 1600
    assert store.count() == 200
    ids = [t.id for t in store.iter_trajectories()]
    assert sorted(ids) == sorted(t.id for t in trajs)


def test_two_connections_share_one_file(tmp_path, make_trajectory):
    path = tmp_path / "shared.sqlite"
    with RunStore(path) as a, RunStore(path, synchronous="NORMAL") as b:
        assert a.journal_mode == "wal"
        a.put(make_trajectory(sample=0))
        assert b.put(make_trajectory(sample=0)) is False
        assert b.put(make_trajectory(sample=1)) is True
        assert a.count() == 2


def _tamper(path: Path, sql: str, params: tuple = ()) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(sql, params)
    conn.close()


def test_corrupt_row_raises_with_its_row_id(tmp_path, make_trajectory):
    path = tmp_path / "runs.sqlite"
    trajs = [make_trajectory(sample=i) for i in range(4)]
    with RunStore(path) as store:
        store.put_many(trajs)
    _tamper(path, "UPDATE trajectories SET body = zeroblob(40) WHERE row_id = 2")
    _tamper(path, "UPDATE trajectories SET body = ? WHERE row_id = 3", (b"x" * 10,))
    with RunStore(path) as store:
        with pytest.raises(UnreadableRowError, match=r"row 2 \(trajectory") as info:
            store.get(trajs[1].id)
        assert info.value.row_id == 2 and info.value.trajectory_id == trajs[1].id
        assert isinstance(info.value, StoreError)
        with pytest.raises(UnreadableRowError, match="row 2"):
            list(store.iter_trajectories())
        bad: list[UnreadableRowError] = []
        good = list(store.iter_trajectories(skip_corrupt=True, on_corrupt=bad.append))
        assert [t.sample for t in good] == [0, 3]
        assert [e.row_id for e in bad] == [2, 3]
        assert [e.row_id for e in store.verify()] == [2, 3]
        assert store.get(trajs[0].id) is not None


def test_flipped_bytes_with_matching_checksum_still_detected(tmp_path, make_trajectory):
    # An uncompressed body edited to another valid trajectory is caught by the id check.
    path = tmp_path / "runs.sqlite"
    a, b = make_trajectory(sample=0), make_trajectory(sample=1)
    with RunStore(path, compress=False) as store:
        store.put_many([a, b])
    _tamper(path, "UPDATE trajectories SET body = (SELECT body FROM trajectories WHERE row_id = 2), "
            "crc32 = (SELECT crc32 FROM trajectories WHERE row_id = 2) WHERE row_id = 1")  # fmt: skip
    with RunStore(path) as store:
        with pytest.raises(UnreadableRowError, match=f"body holds trajectory '{b.id}'"):
            store.get(a.id)
        # A single altered byte fails the checksum.
        _tamper(
            path,
            "UPDATE trajectories SET body = CAST(replace(CAST(body AS TEXT), '42', '43') AS BLOB) WHERE row_id = 2",
        )
        with pytest.raises(UnreadableRowError, match="checksum"):
            store.get(b.id)


def test_row_from_newer_schema_is_refused(tmp_path, make_trajectory):
    path = tmp_path / "runs.sqlite"
    traj = make_trajectory()
    with RunStore(path) as store:
        store.put(traj)
    _tamper(path, "UPDATE trajectories SET schema_version = ?", (SCHEMA_VERSION + 1,))
    with RunStore(path) as store, pytest.raises(UnreadableRowError, match="schema version"):
        store.get(traj.id)


def test_store_from_newer_version_is_refused(tmp_path, make_trajectory):
    path = tmp_path / "runs.sqlite"
    with RunStore(path) as store:
        store.put(make_trajectory())
    _tamper(path, "UPDATE meta SET value = ? WHERE key = 'store_version'", (str(STORE_VERSION + 1),))
    with pytest.raises(StoreError, match="upgrade reasonloop"):
        RunStore(path)


def test_not_a_database_is_a_store_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open run store"):
        RunStore(path)


def test_closed_store_and_bad_config(tmp_path, make_trajectory):
    store = RunStore(tmp_path / "runs.sqlite")
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.put(make_trajectory())
    with pytest.raises(ConfigError, match="synchronous"):
        RunStore(tmp_path / "x.sqlite", synchronous="OFF")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="timeout_s"):
        RunStore(tmp_path / "x.sqlite", timeout_s=0)


def test_store_refuses_use_across_fork(store, make_trajectory):
    pid = os.fork()
    if pid == 0:  # child: must refuse the parent's connection, and say so through its exit code
        try:
            store.count()
        except StoreError as exc:
            os._exit(0 if "open it again" in str(exc) else 2)
        except BaseException:
            os._exit(3)
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert store.put(make_trajectory())  # the parent's store still works
