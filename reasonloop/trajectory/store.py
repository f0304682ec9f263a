"""The run store: finished episodes in SQLite, one row each, keyed idempotently.

A finished episode is the unit of commit. Each row holds the searchable columns of
one trajectory (ids, key, agent, model, status, reward, sizes, times) and the full
``Trajectory.to_json()`` text, zlib-compressed, with a CRC-32 of the stored bytes,
so a row either decodes to exactly what was put or raises :class:`UnreadableRowError`.

Idempotency: the key ``(run_id, task_id, sample, seed)`` is unique, with a NULL seed
counted as a value of its own (the index is on ``ifnull(seed, '')``; SQLite never
compares the text ``''`` equal to an integer). Storing a key twice keeps the first row.

Durability: an episode is acknowledged when :meth:`RunStore.put` returns, that is
after ``COMMIT``. In WAL mode a commit appends the pages and a commit frame to the
``-wal`` file with ``write(2)`` before returning; those bytes sit in the kernel's
page cache, which outlives the process, and the next open replays them. So
``synchronous=NORMAL`` already survives SIGKILL or an OOM kill of the writer; it may
lose the last commits (never corrupt the file) if the *machine* loses power, because
WAL is fsynced only at checkpoints. ``synchronous=FULL`` (the default) fsyncs the WAL
on every commit, so an acknowledged episode survives power loss too; its cost is one
fsync per ``put`` (``put_many`` pays it once per batch), small next to an episode
that takes seconds. ``benchmarks/store_throughput.py`` measures both.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from reasonloop.errors import ConfigError, StoreError
from reasonloop.trajectory._rows import (
    EpisodeRow,
    RunSummary,
    StoreKey,
    UnreadableRowError,
    decode_row,
    encode_row,
    seed_param,
)
from reasonloop.trajectory.schema import Trajectory

__all__ = [
    "STORE_VERSION",
    "EpisodeRow",
    "RunStore",
    "RunSummary",
    "StoreKey",
    "Synchronous",
    "UnreadableRowError",
]

STORE_VERSION = 1
"""Version of the SQLite layout; a store written by a newer version is refused."""

Synchronous = Literal["NORMAL", "FULL"]

_PAGE_ROWS = 128  # rows read per lock hold while iterating; bounds memory and lock time

_DDL = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS trajectories (
        row_id INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        run_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        sample INTEGER NOT NULL,
        seed INTEGER,
        parent_id TEXT,
        fork_step INTEGER,
        agent TEXT NOT NULL,
        model TEXT NOT NULL,
        status TEXT NOT NULL,
        reward REAL,
        n_steps INTEGER NOT NULL,
        n_tool_calls INTEGER NOT NULL,
        n_tokens INTEGER NOT NULL,
        created_at REAL,
        finished_at REAL,
        stored_at REAL NOT NULL,
        schema_version INTEGER NOT NULL,
        encoding TEXT NOT NULL,
        crc32 INTEGER NOT NULL,
        body BLOB NOT NULL
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS trajectories_key ON trajectories (run_id, task_id, sample, ifnull(seed, ''))",
    "CREATE INDEX IF NOT EXISTS trajectories_run ON trajectories (run_id, row_id)",
)

_ROW_COLUMNS = (
    "row_id, id, run_id, task_id, sample, seed, parent_id, fork_step, agent, model, status, reward, "
    "n_steps, n_tool_calls, n_tokens, created_at, finished_at, schema_version"
)
_ROW_NAMES = tuple(_ROW_COLUMNS.split(", "))
_BODY_COLUMNS = "row_id, id, schema_version, encoding, crc32, body"
_INSERT = (
    "INSERT INTO trajectories (id, run_id, task_id, sample, seed, parent_id, fork_step, agent, model, status, "
    "reward, n_steps, n_tool_calls, n_tokens, created_at, finished_at, schema_version, stored_at, encoding, crc32, "
    "body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_KEY_WHERE = "run_id = ? AND task_id = ? AND sample = ? AND ifnull(seed, '') = ?"


class RunStore:
    """Finished trajectories in one SQLite file (WAL mode), safe to share between threads.

    Args:
        path: The database file; created (with its directory) when missing.
        synchronous: ``"FULL"`` fsyncs every commit (survives power loss); ``"NORMAL"``
            survives the death of the process only. See the module docstring.
        timeout_s: How long a write waits for another process's lock before failing.
        compress: Store bodies zlib-compressed (about 2x smaller for token-heavy runs).

    Attributes:
        path: The database file.
        journal_mode: What SQLite granted: ``"wal"`` on local disks (``"memory"`` for
            ``":memory:"``; some network file systems refuse WAL).

    Raises:
        StoreError: The file is not a run store, is written by a newer version, or
            cannot be opened.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Synchronous = "FULL",
        timeout_s: float = 30.0,
        compress: bool = True,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ConfigError(f"synchronous must be 'NORMAL' or 'FULL', got {synchronous!r}")
        if not timeout_s > 0:
            raise ConfigError(f"timeout_s must be > 0, got {timeout_s}")
        self.path = Path(path)
        self._encoding = "json+zlib" if compress else "json"
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self.journal_mode = ""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open run store {self.path}: {exc}") from exc
        try:
            self._setup(conn, synchronous, timeout_s)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cannot open run store {self.path}: {exc}") from exc
            raise
        self._conn = conn

    def _setup(self, conn: sqlite3.Connection, synchronous: str, timeout_s: float) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        self.journal_mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_DDL[0])
            found = conn.execute("SELECT value FROM meta WHERE key = 'store_version'").fetchone()
            if found is None:
                conn.execute("INSERT INTO meta VALUES ('store_version', ?)", (str(STORE_VERSION),))
            elif not str(found[0]).isdigit() or int(found[0]) > STORE_VERSION:
                raise StoreError(
                    f"run store {self.path} has layout version {found[0]!r}; this reasonloop reads "
                    f"<= {STORE_VERSION}: upgrade reasonloop to open it"
                )
            for statement in _DDL[1:]:
                conn.execute(statement)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- plumbing -------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    def __enter__(self) -> RunStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the database; further calls raise :class:`StoreError`. Idempotent."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def _locked(self, begin: Literal["IMMEDIATE", "DEFERRED"] | None = None) -> Iterator[sqlite3.Connection]:
        """The connection under the lock; inside a transaction when ``begin`` is given.

        ``IMMEDIATE`` takes the write lock up front (no deadlock between two writers
        upgrading); ``DEFERRED`` gives a consistent read snapshot (WAL readers never block).
        """
        with self._lock:
            if self._conn is None:
                raise StoreError(f"run store {self.path} is closed")
            if os.getpid() != self._pid:  # a SQLite connection must not cross fork()
                raise StoreError(f"run store {self.path} was opened by process {self._pid}; open it again in this one")
            conn = self._conn
            try:
                if begin is None:
                    yield conn
                    return
                conn.execute(f"BEGIN {begin}")
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"run store {self.path}: {type(exc).__name__}: {exc}") from exc

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        with self._locked() as conn:
            return conn.execute(sql, tuple(params)).fetchall()

    # -- writing --------------------------------------------------------------------

    def put(self, traj: Trajectory) -> bool:
        """Store a finished episode; True when it is new, False when its key was stored.

        Raises:
            StoreError: ``traj`` is running, its id is stored under another key, or
                the database cannot be written.
        """
        params = encode_row(traj, self._encoding)
        with self._locked("IMMEDIATE") as conn:
            return self._insert(conn, params)

    def put_many(self, trajs: Iterable[Trajectory]) -> int:
        """Store many episodes in one transaction (all or none); returns how many were new."""
        batch = [encode_row(t, self._encoding) for t in trajs]
        with self._locked("IMMEDIATE") as conn:
            return sum(self._insert(conn, params) for params in batch)

    @staticmethod
    def _insert(conn: sqlite3.Connection, params: tuple[Any, ...]) -> bool:
        if conn.execute(_INSERT, params).rowcount == 1:
            return True
        # Not inserted: either the key is stored (the idempotent case) or the id is
        # taken by another key, which would silently drop a different episode.
        run_id, task_id, sample, seed = params[1:5]
        key = (run_id, task_id, sample, seed_param(seed))
        if conn.execute(f"SELECT 1 FROM trajectories WHERE {_KEY_WHERE}", key).fetchone():
            return False
        raise StoreError(f"trajectory id {params[0]!r} is already stored under another key")

    def delete_run(self, run_id: str) -> int:
        """Delete every episode of ``run_id``; returns how many were deleted."""
        with self._locked("IMMEDIATE") as conn:
            return conn.execute("DELETE FROM trajectories WHERE run_id = ?", (run_id,)).rowcount

    # -- reading --------------------------------------------------------------------

    def get(self, trajectory_id: str) -> Trajectory | None:
        """The trajectory with this id, or None. Raises :class:`UnreadableRowError`."""
        rows = self._query(f"SELECT {_BODY_COLUMNS} FROM trajectories WHERE id = ?", (trajectory_id,))
        return decode_row(rows[0]) if rows else None

    def has(self, run_id: str, task_id: str, sample: int, seed: int | None) -> bool:
        """Whether the episode with this key is stored."""
        params = (run_id, task_id, sample, seed_param(seed))
        return bool(self._query(f"SELECT 1 FROM trajectories WHERE {_KEY_WHERE}", params))

    def finished_keys(self, run_id: str) -> set[StoreKey]:
        """Keys of the stored episodes of ``run_id``: what a resumed run must skip."""
        rows = self._query("SELECT run_id, task_id, sample, seed FROM trajectories WHERE run_id = ?", (run_id,))
        return {(r[0], r[1], r[2], r[3]) for r in rows}

    def count(self, run_id: str | None = None) -> int:
        """Number of stored episodes, of one run or of all."""
        if run_id is None:
            return int(self._query("SELECT COUNT(*) FROM trajectories")[0][0])
        return int(self._query("SELECT COUNT(*) FROM trajectories WHERE run_id = ?", (run_id,))[0][0])

    def _pages(self, columns: str, run_id: str | None, task_id: str | None, limit: int | None) -> Iterator[Any]:
        """Rows in insertion order, read a page at a time so no lock is held while the caller works."""
        if limit is not None and limit < 0:
            raise ConfigError(f"limit must be >= 0, got {limit}")
        where, params = ["row_id > ?"], []
        for column, value in (("run_id", run_id), ("task_id", task_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = f"SELECT {columns} FROM trajectories WHERE {' AND '.join(where)} ORDER BY row_id LIMIT ?"
        last, left = 0, math.inf if limit is None else limit
        while left > 0:
            rows = self._query(sql, (last, *params, int(min(left, _PAGE_ROWS))))
            yield from rows
            if len(rows) < _PAGE_ROWS:
                return
            last, left = rows[-1][0], left - len(rows)

    def iter_trajectories(
        self,
        run_id: str | None = None,
        task_id: str | None = None,
        limit: int | None = None,
        *,
        skip_corrupt: bool = False,
        on_corrupt: Callable[[UnreadableRowError], None] | None = None,
    ) -> Iterator[Trajectory]:
        """Stored trajectories in insertion order.

        Args:
            run_id: Only this run.
            task_id: Only this task.
            limit: Read at most this many rows.
            skip_corrupt: Skip unreadable rows instead of raising; each one is passed
                to ``on_corrupt`` (when given) so the caller can report its id.
            on_corrupt: Called with the error of every skipped row.

        Raises:
            UnreadableRowError: A row cannot be decoded and ``skip_corrupt`` is False.
        """
        for row in self._pages(_BODY_COLUMNS, run_id, task_id, limit):
            try:
                traj = decode_row(row)
            except UnreadableRowError as exc:
                if not skip_corrupt:
                    raise
                if on_corrupt is not None:
                    on_corrupt(exc)
                continue
            yield traj

    def iter_episodes(
        self, run_id: str | None = None, task_id: str | None = None, limit: int | None = None
    ) -> Iterator[EpisodeRow]:
        """The flat columns of stored episodes in insertion order (bodies are not read)."""
        for row in self._pages(_ROW_COLUMNS, run_id, task_id, limit):
            yield EpisodeRow.from_db(_ROW_NAMES, row)

    def verify(self, run_id: str | None = None) -> list[UnreadableRowError]:
        """Decode every row (of one run or all); returns the errors of unreadable ones."""
        bad: list[UnreadableRowError] = []
        for _ in self.iter_trajectories(run_id, skip_corrupt=True, on_corrupt=bad.append):
            pass
        return bad

    def runs(self) -> list[RunSummary]:
        """One summary per run, in the order the runs were first stored."""
        with self._locked("DEFERRED") as conn:
            head = conn.execute(
                "SELECT run_id, COUNT(*), AVG(reward), MIN(created_at), MAX(created_at) FROM trajectories "
                "GROUP BY run_id ORDER BY MIN(row_id)"
            ).fetchall()
            facets: dict[tuple[str, str], dict[str, int]] = {}
            for column in ("model", "agent", "status"):
                sql = f"SELECT run_id, {column}, COUNT(*) FROM trajectories GROUP BY run_id, {column}"
                for run_id, value, n in conn.execute(sql):
                    facets.setdefault((run_id, column), {})[value] = n
        return [
            RunSummary(
                run_id=run_id,
                episodes=episodes,
                mean_reward=mean,
                first_created_at=math.nan if first is None else first,
                last_created_at=math.nan if last is None else last,
                models=tuple(sorted(facets.get((run_id, "model"), {}))),
                agents=tuple(sorted(facets.get((run_id, "agent"), {}))),
                statuses=dict(sorted(facets.get((run_id, "status"), {}).items())),
            )
            for run_id, episodes, mean, first, last in head
        ]
