"""The pool of pre-started interpreter sandboxes, and workers dying with their parent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reasonloop.errors import ConfigError
from reasonloop.tools._sandbox_proc import descendants
from reasonloop.tools.python import CellStatus, PythonConfig, PythonSession, PythonSessionFactory

HELPER = Path(__file__).with_name("orphan_check.py")


def _sandbox_pid(session: PythonSession) -> int:
    family = session._family
    assert family is not None
    return family.proc.pid


def test_pooled_sessions_are_fresh_and_never_share_a_sandbox(sandbox_required: None, procs) -> None:  # type: ignore[no-untyped-def]
    factory = PythonSessionFactory(PythonConfig(timeout_s=5, pool_size=2))
    pool = factory.runtime.pool
    assert pool is not None and pool.ready == 0  # nothing starts before the first session
    first = factory.open()
    assert first.run("secret = 'A'\nopen('a.txt', 'w').write('A')").status is CellStatus.OK
    assert pool.wait_ready(60.0) and pool.ready == 2
    seen = {_sandbox_pid(first)}
    for _ in range(3):  # more sessions than the pool holds: it refills
        s = factory.open()
        result = s.run("import os\n['secret' in dir(), os.path.exists('a.txt'), sorted(os.listdir('/work'))]")
        assert result.status is CellStatus.OK and result.display is not None
        assert result.display.startswith("[False, False, ['b"), result.display
        pid = _sandbox_pid(s)
        assert pid not in seen
        seen.add(pid)
        members = procs.members(s)
        s.close()
        assert not procs.alive(members)
        assert pool.wait_ready(60.0)
    assert pool.stats["taken"] == 3 and pool.stats["missed"] == 1 and pool.stats["failed"] == 0
    assert first.run("secret").display == "'A'"
    first.close()
    pool.close()


def test_closing_the_pool_kills_the_waiting_sandboxes(sandbox_required: None, procs) -> None:  # type: ignore[no-untyped-def]
    before = descendants(os.getpid())
    factory = PythonSessionFactory(PythonConfig(timeout_s=5, pool_size=2))
    pool = factory.runtime.pool
    assert pool is not None
    session = factory.open()
    session.run("1")
    assert pool.wait_ready(60.0)
    session.close()
    waiting = procs.alive(descendants(os.getpid()) - before)
    assert len(waiting) >= 2 * 4  # per sandbox: bwrap, its init, the worker's holder, the worker
    pool.close()
    assert not procs.alive(waiting)
    assert pool.ready == 0 and pool.take() is None
    assert not procs.zombies_of(os.getpid()) & waiting


def test_pool_size_zero_starts_every_session_cold(sandbox_required: None) -> None:
    factory = PythonSessionFactory(PythonConfig(timeout_s=5, pool_size=0))
    assert factory.runtime.pool is None
    with factory.open() as session:
        assert session.run("6 * 7").display == "42"
    with pytest.raises(ConfigError, match="pool_size"):
        PythonConfig(pool_size=-1)


def test_single_sessions_do_not_start_a_pool(sandbox_required: None) -> None:
    with PythonSession.open(PythonConfig(timeout_s=5)) as session:
        assert session._rt.pool is None
        assert session.run("1").display == "1"


@pytest.mark.parametrize("mode", ["unsafe-session", "unsafe-fork", "pool", "unsafe-pool"])
def test_sandboxes_die_with_a_sigkilled_parent(sandbox_required: None, mode: str) -> None:
    """The holder of the sandboxes is SIGKILLed; everything it started must die too."""
    proc = subprocess.run([sys.executable, str(HELPER), mode], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["ready"] and len(report["pids"]) >= 2, report
    assert report["survivors"] == [], report


def test_a_hostile_session_cannot_reach_the_waiting_sandboxes(sandbox_required: None, procs) -> None:  # type: ignore[no-untyped-def]
    factory = PythonSessionFactory(PythonConfig(timeout_s=3, pool_size=2))
    pool = factory.runtime.pool
    assert pool is not None
    with factory.open() as first:
        first.run("1")
    assert pool.wait_ready(60.0)
    with factory.open() as hostile:
        code = "import os, signal, subprocess\nsubprocess.Popen(['sleep', '100'])\nos.kill(-1, signal.SIGKILL)"
        assert hostile.run(code).state_lost
        assert hostile.run("import os\nos.getpid()").status is CellStatus.OK
    assert pool.wait_ready(60.0)
    with factory.open() as after:
        assert after.run("6 * 7").display == "42" and not procs.strays(after)
    assert pool.stats["taken"] == 3 and pool.stats["failed"] == 0  # the restart took a fresh sandbox too
    pool.close()


@pytest.mark.parametrize("unsafe", [False, True], ids=["sandboxed", "unsafe"])
def test_a_session_outlives_the_thread_that_started_it(sandbox_required: None, unsafe: bool) -> None:
    """The kernel signals a child when the *thread* that forked it exits; sessions must not care."""
    import asyncio
    import threading

    from reasonloop.tools.sandbox import SandboxConfig

    config = PythonConfig(timeout_s=5, pool_size=0, sandbox=SandboxConfig(unsafe_no_sandbox=unsafe))
    opened: list[PythonSession] = []

    def start() -> None:
        session = PythonSession.open(config)
        assert session.run("x = 41\nx + 1").display == "42"
        opened.append(session)

    thread = threading.Thread(target=start)
    thread.start()
    thread.join()
    session = opened[0]
    pid = _sandbox_pid(session)
    try:
        for _ in range(20):  # the signal is immediate; give a dying sandbox time to be seen dead
            cell = session.run("x")
            assert cell.status is CellStatus.OK and cell.display == "41", cell.format()
        assert _sandbox_pid(session) == pid  # the same process, never restarted
    finally:
        session.close()

    async def open_in_a_worker_thread() -> PythonSession:  # a to_thread worker retires with its loop
        session = await asyncio.to_thread(PythonSession.open, config)
        await asyncio.to_thread(session.run, "y = 5")
        return session

    session = asyncio.run(open_in_a_worker_thread())
    try:
        assert session.run("y * 2").display == "10"
    finally:
        session.close()
