"""Durability: concurrent writer processes lose nothing; kill -9 mid-write leaves a readable store."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from reasonloop.memory import MemoryStore

REPO = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("memory_writer.py")


def _start(store: Path, name: str, n: int, acks: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(store), name, str(n), str(acks)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", proc.stderr and proc.stderr.read()
    return proc


def _acked(acks: Path) -> list[int]:
    if not acks.exists():
        return []
    return [int(x) for x in acks.read_text().split()]


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    MemoryStore(path).close()
    n, writers = 60, ["w0", "w1", "w2", "w3"]
    procs = [_start(path, w, n, tmp_path / f"{w}.acks") for w in writers]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
    with MemoryStore(path) as store:
        for w in writers:
            assert store.count(("load", w)) == n
            assert {i.key for i in store.listing(("load", w), limit=1000)} == {f"{w}-{k}" for k in range(n)}
        # Read-modify-write increments from four processes: none lost.
        assert store.get(("load", "shared"), "counter").value == {"n": n * len(writers)}  # type: ignore[union-attr]
        history = store.history(limit=100_000)
        assert len(history) == 2 * n * len(writers)
        assert {e["actor"] for e in history} == set(writers)
        assert store.recall(("load",), "writer w2 item 7", limit=1)[0].key == "w2-7"


def test_kill_minus_nine_mid_write_leaves_a_readable_store(tmp_path: Path) -> None:
    path, acks = tmp_path / "killed.db", tmp_path / "w.acks"
    proc = _start(path, "w", 100_000, acks)
    deadline = time.monotonic() + 60
    while len(_acked(acks)) < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    acked = _acked(acks)
    assert len(acked) >= 40
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    with MemoryStore(path) as store:
        keys = {i.key for i in store.listing(("load", "w"), limit=1_000_000)}
        assert {f"w-{k}" for k in acked} <= keys  # every acknowledged write survived
        assert len(keys) <= len(acked) + 1  # at most the one in flight, and whole if there
        counter = store.get(("load", "shared"), "counter").value["n"]  # type: ignore[union-attr]
        assert len(acked) <= counter <= len(acked) + 1
        # FTS index and items agree: every item is found by its own text.
        last = max(acked)
        assert store.recall(("load",), f"writer w item {last}", limit=1)[0].key == f"w-{last}"
        store.put(("load", "w"), "after", {"text": "written after the crash"})
        assert store.get(("load", "w"), "after") is not None
