"""JSON Lines and Parquet export/import: counts, flat columns, bad files, atomic writes."""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reasonloop.errors import ConfigError, StoreError
from reasonloop.trajectory import (
    JSON_COLUMN,
    Reward,
    RunStore,
    export_jsonl,
    export_parquet,
    import_jsonl,
    import_parquet,
    read_jsonl,
    read_parquet,
)


def _fill(store, make_trajectory):
    trajs = [make_trajectory(run_id=r, sample=i) for i, r in enumerate(["r1", "r2", "r1", "r1"])]
    store.put_many(trajs)
    return trajs


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_store_to_file_to_new_store(tmp_path, store, make_trajectory, fmt):
    trajs = _fill(store, make_trajectory)
    export, import_ = {"jsonl": (export_jsonl, import_jsonl), "parquet": (export_parquet, import_parquet)}[fmt]
    path = tmp_path / f"r1.{fmt}"
    assert export(store, path, run_id="r1") == 3
    with RunStore(tmp_path / "copy.sqlite") as copy:
        assert import_(path, copy) == 3
        assert import_(path, copy) == 0  # idempotent
        assert [t.model_dump_json() for t in copy.iter_trajectories()] == [
            t.model_dump_json() for t in trajs if t.run_id == "r1"
        ]


def test_parquet_flat_columns(tmp_path, make_trajectory):
    traj = make_trajectory(rewards=[Reward(name="a", value=0.5), Reward(name="b", value=math.inf)])
    path = tmp_path / "t.parquet"
    export_parquet([traj], path)
    table = pq.read_table(path)
    row = table.to_pylist()[0]
    assert row["id"] == traj.id and row["run_id"] == "run-a" and row["status"] == "finished"
    assert (row["seed"], row["parent_id"], row["fork_step"]) == (None, None, None)
    assert row["reward"] == math.inf
    assert (row["n_steps"], row["n_tool_calls"], row["n_tokens"], row["n_sampled_tokens"]) == (4, 1, 20, 12)
    assert row["final_answer"] == "42" and row["model"] == "tiny" and row["agent"] == "react"
    assert row[JSON_COLUMN] == traj.to_json()
    assert table.schema.metadata[b"reasonloop.content"] == b"trajectories"


def test_empty_exports_are_valid_files(tmp_path):
    assert export_jsonl([], tmp_path / "e.jsonl") == 0
    assert export_parquet([], tmp_path / "e.parquet") == 0
    assert list(read_jsonl(tmp_path / "e.jsonl")) == []
    assert list(read_parquet(tmp_path / "e.parquet")) == []


def test_bad_jsonl_line_reports_its_number(tmp_path, store, make_trajectory):
    good = [make_trajectory(sample=i).to_json() for i in range(3)]
    path = tmp_path / "bad.jsonl"
    path.write_text(f'{good[0]}\n\n{good[1]}\n{{"status": "finished", "steps": 3}}\n{good[2]}\n')
    with pytest.raises(StoreError, match=r"bad\.jsonl:4: not a valid trajectory .*steps"):
        list(read_jsonl(path))
    path.write_bytes(good[0].encode() + b"\n" + b"\xff\xfe garbage\n")
    with pytest.raises(StoreError, match=r"bad\.jsonl:2"):
        import_jsonl(path, store, batch_size=1)
    assert store.count() == 1  # what came before the bad line is kept
    with pytest.raises(StoreError, match="cannot read"):
        list(read_jsonl(tmp_path / "missing.jsonl"))
    with pytest.raises(ConfigError):
        import_jsonl(path, store, batch_size=0)


def test_importing_a_running_trajectory_is_refused(tmp_path, store, make_trajectory):
    path = tmp_path / "running.jsonl"
    export_jsonl([make_trajectory(status="running")], path)
    with pytest.raises(StoreError, match="still running"):
        import_jsonl(path, store)
    assert store.count() == 0


def test_bad_parquet_files(tmp_path, make_trajectory):
    not_parquet = tmp_path / "x.parquet"
    not_parquet.write_bytes(b"PAR1 but not really")
    with pytest.raises(StoreError, match=r"cannot read .* as Parquet"):
        list(read_parquet(not_parquet))

    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), other)
    with pytest.raises(StoreError, match="no 'trajectory_json' column"):
        list(read_parquet(other))
    broken = tmp_path / "broken.parquet"
    text = [make_trajectory(sample=0).to_json(), '{"steps": "nope"}']
    pq.write_table(pa.table({JSON_COLUMN: text}), broken)
    with pytest.raises(StoreError, match=r"row 1: not a valid trajectory"):
        list(read_parquet(broken))


def test_failed_export_leaves_previous_file_intact(tmp_path, make_trajectory):
    path = tmp_path / "t.jsonl"
    export_jsonl([make_trajectory()], path)
    before = path.read_bytes()

    def broken():
        yield make_trajectory(sample=1)
        raise RuntimeError("source failed mid-export")

    with pytest.raises(RuntimeError):
        export_jsonl(broken(), path)
    with pytest.raises(StoreError, match="expected Trajectory"):
        export_parquet([{"not": "a trajectory"}], tmp_path / "t.parquet")  # type: ignore[list-item]
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.jsonl"]
