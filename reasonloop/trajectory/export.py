"""Trajectories to and from JSON Lines and Parquet files, losslessly.

JSON Lines holds one ``Trajectory.to_json()`` per line (UTF-8, ``NaN``/``Infinity``
as JSON constants). Parquet holds flat columns for analysis (ids, key, agent, model,
status, reward, token and step counts) plus ``trajectory_json``, the full JSON text;
importing reads only that column, so a Parquet round trip is as lossless as JSON.

Files are written to a temporary name in the target directory, fsynced, then renamed:
a reader never sees half a file, and a failed export leaves no partial file behind.
pyarrow is imported only by the Parquet functions.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reasonloop.errors import ConfigError, StoreError
from reasonloop.trajectory.schema import SCHEMA_VERSION, PolicyStep, Trajectory
from reasonloop.trajectory.store import EpisodeRow, RunStore

__all__ = [
    "JSON_COLUMN",
    "export_jsonl",
    "export_parquet",
    "import_jsonl",
    "import_parquet",
    "read_jsonl",
    "read_parquet",
]

JSON_COLUMN = "trajectory_json"
"""The Parquet column holding each trajectory's full JSON text."""

_BATCH = 256  # trajectories per Parquet record batch / per import transaction


def _source(source: RunStore | Iterable[Trajectory], run_id: str | None) -> Iterator[Trajectory]:
    if isinstance(source, RunStore):
        yield from source.iter_trajectories(run_id=run_id)
        return
    for traj in source:
        if not isinstance(traj, Trajectory):
            raise StoreError(f"expected Trajectory objects, got {type(traj).__name__}")
        if run_id is None or traj.run_id == run_id:
            yield traj


@contextmanager
def _atomic(path: str | Path) -> Iterator[Path]:
    """A temporary path next to ``path``; renamed onto it (after fsync) when the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def _invalid(where: str, exc: ValidationError) -> StoreError:
    """A short message for a trajectory that failed validation (no multi-kB input echo)."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0] if errors else {"loc": (), "msg": str(exc)}
    loc = ".".join(str(part) for part in first["loc"]) or "(root)"
    more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
    return StoreError(f"{where}: not a valid trajectory (schema version {SCHEMA_VERSION}): {loc}: {first['msg']}{more}")


def _batched(items: Iterable[Trajectory], size: int) -> Iterator[list[Trajectory]]:
    if size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {size}")
    batch: list[Trajectory] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# -- JSON Lines ---------------------------------------------------------------------


def export_jsonl(source: RunStore | Iterable[Trajectory], path: str | Path, run_id: str | None = None) -> int:
    """Write trajectories to a JSON Lines file, one per line; returns how many.

    Args:
        source: A store (read in insertion order) or any iterable of trajectories.
        path: The file to write (replaced atomically).
        run_id: Only this run.
    """
    count = 0
    with _atomic(path) as tmp, open(tmp, "wb") as f:
        for traj in _source(source, run_id):
            f.write(traj.to_json().encode("utf-8") + b"\n")
            count += 1
    return count


def read_jsonl(path: str | Path) -> Iterator[Trajectory]:
    """The trajectories of a JSON Lines file, in file order; blank lines are skipped.

    Raises:
        StoreError: The file cannot be read, or a line is not a valid trajectory
            (the message gives the file and the 1-based line number).
    """
    try:
        with open(path, "rb") as f:  # binary: only b"\n" ends a line, whatever the text holds
            yield from _parse_lines(str(path), f)
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc}") from exc


def _parse_lines(name: str, lines: Iterable[bytes]) -> Iterator[Trajectory]:
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            traj = Trajectory.from_json(line)
        except ValidationError as exc:
            raise _invalid(f"{name}:{lineno}", exc) from None
        yield traj


def import_jsonl(path: str | Path, store: RunStore, *, batch_size: int = _BATCH) -> int:
    """Store the trajectories of a JSON Lines file; returns how many were new.

    Batches are committed as they are read: when a bad line stops the import, the
    lines before it are stored, and running the import again after fixing the file
    stores only the rest (keys are idempotent).
    """
    return sum(store.put_many(batch) for batch in _batched(read_jsonl(path), batch_size))


# -- Parquet ------------------------------------------------------------------------


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow is a core dependency
        raise StoreError("Parquet files need pyarrow: pip install pyarrow") from exc
    return pa, pq


def _parquet_schema(pa: Any) -> Any:
    int64, f64, text = pa.int64(), pa.float64(), pa.string()
    fields = [
        ("id", text), ("run_id", text), ("task_id", text), ("sample", int64), ("seed", int64),
        ("parent_id", text), ("fork_step", int64), ("agent", text), ("model", text), ("status", text),
        ("reward", f64), ("n_steps", int64), ("n_tool_calls", int64), ("n_tokens", int64),
        ("n_sampled_tokens", int64), ("prompt_tokens", int64), ("completion_tokens", int64),
        ("cost_usd", f64), ("created_at", f64), ("finished_at", f64), ("schema_version", int64),
        ("final_answer", text), (JSON_COLUMN, pa.large_string()),
    ]  # fmt: skip
    metadata = {b"reasonloop.content": b"trajectories", b"reasonloop.schema_version": str(SCHEMA_VERSION).encode()}
    return pa.schema(fields, metadata=metadata)


def _parquet_row(traj: Trajectory) -> dict[str, Any]:
    row = dataclasses.asdict(EpisodeRow.from_trajectory(traj))
    del row["row_id"]
    usage = traj.usage
    row.update(
        reward=traj.reward,  # Parquet keeps NaN, unlike SQLite
        n_sampled_tokens=sum(len(s.token_ids) for s in traj.steps if isinstance(s, PolicyStep)),
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cost_usd=usage.cost_usd,
        final_answer=traj.final_answer,
    )
    row[JSON_COLUMN] = traj.to_json()
    return row


def export_parquet(
    source: RunStore | Iterable[Trajectory],
    path: str | Path,
    run_id: str | None = None,
    *,
    compression: str = "zstd",
) -> int:
    """Write trajectories to a Parquet file (flat columns + full JSON); returns how many.

    Args:
        source: A store (read in insertion order) or any iterable of trajectories.
        path: The file to write (replaced atomically).
        run_id: Only this run.
        compression: Parquet codec (``zstd``, ``snappy``, ``gzip``, ``none``...).
    """
    pa, pq = _pyarrow()
    schema = _parquet_schema(pa)
    count = 0
    with _atomic(path) as tmp, pq.ParquetWriter(tmp, schema, compression=compression) as writer:
        for batch in _batched(_source(source, run_id), _BATCH):
            writer.write_batch(pa.RecordBatch.from_pylist([_parquet_row(t) for t in batch], schema=schema))
            count += len(batch)
    return count


def read_parquet(path: str | Path) -> Iterator[Trajectory]:
    """The trajectories of a Parquet export, decoded from its JSON column.

    Raises:
        StoreError: The file is not Parquet, has no JSON column, or a row is not a
            valid trajectory (the message gives the 0-based row index).
    """
    pa, pq = _pyarrow()
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"cannot read {path} as Parquet: {exc}") from exc
    if JSON_COLUMN not in parquet.schema_arrow.names:
        raise StoreError(f"{path} has no {JSON_COLUMN!r} column: not a reasonloop trajectory export")
    index = 0
    with parquet:
        for batch in parquet.iter_batches(batch_size=_BATCH, columns=[JSON_COLUMN]):
            for text in batch.column(0).to_pylist():
                if text is None:
                    raise StoreError(f"{path}: row {index}: {JSON_COLUMN} is null")
                try:
                    traj = Trajectory.from_json(text)
                except ValidationError as exc:
                    raise _invalid(f"{path}: row {index}", exc) from None
                yield traj
                index += 1


def import_parquet(path: str | Path, store: RunStore, *, batch_size: int = _BATCH) -> int:
    """Store the trajectories of a Parquet export; returns how many were new.

    Batches are committed as they are read, as in :func:`import_jsonl`.
    """
    return sum(store.put_many(batch) for batch in _batched(read_parquet(path), batch_size))
