"""How one finished trajectory becomes one run-store row, and back.

Bodies are ``Trajectory.to_json()`` bytes under a named codec, with a CRC-32 of the
stored bytes: a row decodes to exactly what was stored or raises
:class:`UnreadableRowError` naming the row, never to something else.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from reasonloop.errors import StoreError
from reasonloop.trajectory.schema import SCHEMA_VERSION, ToolStep, Trajectory

__all__ = [
    "ENCODINGS",
    "EpisodeRow",
    "RunSummary",
    "StoreKey",
    "UnreadableRowError",
    "decode_row",
    "encode_row",
    "seed_param",
]

StoreKey = tuple[str, str, int, int | None]
"""``(run_id, task_id, sample, seed)``, the same tuple as ``Trajectory.key``."""

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_ZLIB_LEVEL = 1  # level 6 is 2-5x slower here for ~3% smaller bodies (digits of log-probs barely compress)

# Body codecs by name: the name is stored per row, so old rows stay readable.
_ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "json": lambda raw: raw,
    "json+zlib": lambda raw: zlib.compress(raw, _ZLIB_LEVEL),
}
_DECODERS: dict[str, Callable[[bytes], bytes]] = {
    "json": lambda body: body,
    "json+zlib": zlib.decompress,
}

ENCODINGS = tuple(_ENCODERS)
"""Names of the body codecs a row can be written with."""


class UnreadableRowError(StoreError):
    """A stored row cannot be decoded (corrupt bytes, or written by a newer schema)."""

    def __init__(self, row_id: int, trajectory_id: str, reason: str) -> None:
        self.row_id = row_id
        self.trajectory_id = trajectory_id
        self.reason = reason
        super().__init__(f"run store row {row_id} (trajectory {trajectory_id!r}) is unreadable: {reason}")


@dataclass(frozen=True, kw_only=True)
class EpisodeRow:
    """The flat, searchable columns of one stored episode (no steps)."""

    row_id: int | None
    """Insertion number in the store; None for a trajectory not read from a store."""
    id: str
    run_id: str
    task_id: str
    sample: int
    seed: int | None
    parent_id: str | None
    fork_step: int | None
    agent: str
    model: str
    status: str
    reward: float
    """Sum of the reward components (may be NaN or infinite)."""
    n_steps: int
    n_tool_calls: int
    """Number of tool steps (calls that were executed)."""
    n_tokens: int
    """Length of the full token context, prompt included."""
    created_at: float
    finished_at: float | None
    """None when unset, or NaN (a REAL column cannot tell NULL from NaN)."""
    schema_version: int

    @classmethod
    def from_trajectory(cls, traj: Trajectory, row_id: int | None = None) -> EpisodeRow:
        """The columns of ``traj`` as the store writes them."""
        return cls(
            row_id=row_id,
            id=traj.id,
            run_id=traj.run_id,
            task_id=traj.task_id,
            sample=traj.sample,
            seed=traj.seed,
            parent_id=traj.parent_id,
            fork_step=traj.fork_step,
            agent=traj.agent,
            model=traj.model,
            status=traj.status,
            reward=traj.reward,
            n_steps=len(traj.steps),
            n_tool_calls=sum(isinstance(s, ToolStep) for s in traj.steps),
            n_tokens=len(traj.prompt_token_ids) + sum(len(s.token_ids) for s in traj.steps),
            created_at=traj.created_at,
            finished_at=None if traj.finished_at is None or math.isnan(traj.finished_at) else traj.finished_at,
            schema_version=traj.schema_version,
        )

    @classmethod
    def from_db(cls, columns: tuple[str, ...], values: tuple[Any, ...]) -> EpisodeRow:
        """The row as SQLite returns it, whose REAL columns hold NULL where a NaN was written."""
        fields = dict(zip(columns, values, strict=True))
        for name in ("reward", "created_at"):
            if fields[name] is None:
                fields[name] = math.nan
        return cls(**fields)


@dataclass(frozen=True, kw_only=True)
class RunSummary:
    """One run as the store sees it."""

    run_id: str
    episodes: int
    mean_reward: float | None
    """Mean of the episodes' reward sums, NaN sums left out; None when there is none."""
    first_created_at: float
    """Earliest ``created_at`` (NaN when every episode's is NaN)."""
    last_created_at: float
    models: tuple[str, ...]
    agents: tuple[str, ...]
    statuses: dict[str, int]
    """Episode count per trajectory status."""


def _check_int64(name: str, value: int | None) -> None:
    if value is not None and not _INT64_MIN <= value <= _INT64_MAX:
        raise StoreError(f"{name}={value} does not fit in a signed 64-bit integer; the store cannot key it")


def seed_param(seed: int | None) -> int | str:
    """The value the key index compares: ``''`` for no seed (never equal to an integer)."""
    return "" if seed is None else seed


def encode_row(traj: Trajectory, encoding: str) -> tuple[Any, ...]:
    """The INSERT parameters for ``traj`` (see ``store._INSERT`` for their order).

    Raises:
        StoreError: ``traj`` is running or has a key that does not fit the columns.
    """
    if not isinstance(traj, Trajectory):
        raise StoreError(f"expected a Trajectory, got {type(traj).__name__}")
    if traj.status == "running":
        raise StoreError(f"trajectory {traj.id!r} is still running; only finished episodes are stored")
    for name in ("sample", "seed", "fork_step"):
        _check_int64(name, getattr(traj, name))
    row = EpisodeRow.from_trajectory(traj)
    body = _ENCODERS[encoding](traj.to_json().encode("utf-8"))
    return (
        row.id, row.run_id, row.task_id, row.sample, row.seed, row.parent_id, row.fork_step, row.agent,
        row.model, row.status, row.reward, row.n_steps, row.n_tool_calls, row.n_tokens, row.created_at,
        row.finished_at, row.schema_version, time.time(), encoding, zlib.crc32(body), body,
    )  # fmt: skip


def decode_row(row: tuple[Any, ...]) -> Trajectory:
    """Trajectory from a ``(row_id, id, schema_version, encoding, crc32, body)`` row.

    Raises:
        UnreadableRowError: The row does not decode to the trajectory it claims to hold.
    """
    row_id, traj_id, schema_version, encoding, crc, body = row
    if isinstance(schema_version, int) and schema_version > SCHEMA_VERSION:
        reason = f"written with trajectory schema version {schema_version}; this reasonloop reads <= {SCHEMA_VERSION}"
        raise UnreadableRowError(row_id, traj_id, reason)
    decoder = _DECODERS.get(encoding)
    if decoder is None:
        raise UnreadableRowError(row_id, traj_id, f"unknown body encoding {encoding!r}")
    if not isinstance(body, bytes) or zlib.crc32(body) != crc:
        raise UnreadableRowError(row_id, traj_id, "checksum mismatch (the stored bytes were altered)")
    try:
        traj = Trajectory.from_json(decoder(body))
    except (zlib.error, ValidationError) as exc:
        raise UnreadableRowError(row_id, traj_id, f"{type(exc).__name__}: {str(exc)[:300]}") from exc
    if traj.id != traj_id:
        raise UnreadableRowError(row_id, traj_id, f"body holds trajectory {traj.id!r}")
    return traj
