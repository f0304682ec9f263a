"""Tool latency, side by side: sandboxed Python sessions versus plain subprocesses.

Run: ``.venv/bin/python benchmarks/tool_latency.py [--calls N]``. Prints one table with the
ratios the tool suite targets: a warm session <= 0.1x a plain ``subprocess.run([python,
'-c', code])`` (what the ARPO reference code does), a new sandboxed session (open, first
call, close) <= 1.5x one plain subprocess, and a fork <= a new session.

A new session is measured three ways. *Cold*: no pool, the sandbox starts on the first
call (``PythonSession.open``, ``run_python``, or ``pool_size=0``). *Pooled*: the default of
``python_tool`` sessions, measured with the pool refilled before each open, i.e. sessions
that open no faster than one sandbox start apart (episodes longer than ~50 ms). *Burst*:
pooled sessions opened back to back, faster than the pool refills, so most start cold
while the pool competes for the CPU. Every quantity is measured once per round, rounds
interleaved, and the medians are compared, so a background load affects all alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from reasonloop.tools.python import PythonConfig, PythonSession, PythonSessionFactory, _Runtime
from reasonloop.tools.sandbox import Sandbox, SandboxConfig

CODE = "print(1+1)"
_BURST = 8
"""Sessions opened back to back in the burst measurement (four times the default pool)."""


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _plain() -> None:
    subprocess.run([sys.executable, "-c", CODE], capture_output=True, check=True)


def _new_session(open_session: Callable[[], PythonSession]) -> None:
    session = open_session()
    session.run(CODE)
    session.close()


def python_rows(calls: int) -> list[tuple[str, float, str]]:
    """``(label, median ms, note)`` rows for the Python tool."""
    cold_rt = _Runtime(PythonConfig(pool_size=0))
    factory = PythonSessionFactory(PythonConfig())
    pool = factory.runtime.pool
    assert pool is not None, "python_tool sessions are pooled by default"
    prefix = str(Path(cold_rt.spec.python).parent.parent)
    sandbox = Sandbox(SandboxConfig(ro_binds=((prefix, prefix),)))
    reason = sandbox.unavailable_reason()
    if reason is not None:
        raise SystemExit(f"sandbox unavailable: {reason}")
    rounds = max(calls // 10, 5)
    t: dict[str, list[float]] = {k: [] for k in ("plain", "fresh", "cold", "pooled", "burst", "fork")}
    session = PythonSession(cold_rt)
    session.run("x = list(range(1000))")
    _new_session(factory.open)  # the first session starts cold and starts the pool filling
    for _ in range(rounds):
        t["plain"].append(_timed(_plain))
        t["fresh"].append(_timed(lambda: sandbox.run([cold_rt.spec.python, "-I", "-S", "-c", CODE])))
        t["cold"].append(_timed(lambda: _new_session(lambda: PythonSession(cold_rt))))
        pool.wait_ready(30.0)
        t["pooled"].append(_timed(lambda: _new_session(factory.open)))
        pool.wait_ready(30.0)
        t["burst"] += [_timed(lambda: _new_session(factory.open)) for _ in range(_BURST)]
        t["fork"].append(_fork_once(session))
    warm = statistics.median(_timed(lambda: session.run(CODE)) for _ in range(calls))
    per_s = _throughput(cold_rt, calls)
    session.close()
    med = {k: statistics.median(v) for k, v in t.items()}
    plain, fork_s, ms = med["plain"], med["fork"], 1000.0
    return [
        ("plain subprocess.run([python, '-c'])", plain * ms, "baseline (unsandboxed)"),
        ("fresh bwrap sandbox per call", med["fresh"] * ms, f"{med['fresh'] / plain:.2f}x plain"),
        ("warm session round trip", warm * ms, f"{warm / plain:.3f}x plain (target <= 0.1x)"),
        ("new session + call + close, cold (no pool)", med["cold"] * ms, f"{med['cold'] / plain:.2f}x plain"),
        ("new session + call + close, pooled (default)", med["pooled"] * ms,
         f"{med['pooled'] / plain:.2f}x plain (target <= 1.5x); pool refilled between opens"),
        (f"new session + call + close, burst of {_BURST}", med["burst"] * ms,
         f"{med['burst'] / plain:.2f}x plain; opened faster than the pool refills"),
        ("fork a session", fork_s * ms,
         f"{fork_s / med['pooled']:.2f}x pooled new, {fork_s / med['cold']:.2f}x cold new (target <= 1x)"),
        ("warm sessions, 2 workers", 1000.0 / per_s, f"{per_s:.0f} calls/s"),
    ]  # fmt: skip


def _fork_once(session: PythonSession) -> float:
    """Time of one ``fork()`` of a warm session (closing the copy is not timed)."""
    start = time.perf_counter()
    child = session.fork()
    elapsed = time.perf_counter() - start
    child.close()
    return elapsed


def _throughput(runtime: _Runtime, calls: int) -> float:
    pool = [PythonSession(runtime) for _ in range(2)]
    for s in pool:
        s.run("0")
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as ex:
        list(ex.map(lambda i: pool[i % 2].run(CODE), range(calls)))
    per_s = calls / (time.perf_counter() - start)
    for s in pool:
        s.close()
    return per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per warm measurement (rounds: calls / 10)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    rows = python_rows(args.calls)
    width = max(len(r[0]) for r in rows)
    print(f"{'python tool':<{width}}  {'median ms':>10}  note")
    for label, value, note in rows:
        print(f"{label:<{width}}  {value:>10.3f}  {note}")
    print(f"(1-minute load average {load:.2f} on {os.cpu_count()} CPUs at the start)")


if __name__ == "__main__":
    main()
