"""Tool latency, side by side: sandboxed Python sessions versus plain subprocesses.

Run: ``.venv/bin/python benchmarks/tool_latency.py [--calls N]``. Prints one table with the
ratios the tool suite targets: a warm session <= 0.1x a plain ``subprocess.run([python,
'-c', code])`` (what the ARPO reference code does), a new sandboxed session <= 1.5x one
plain subprocess, and a fork <= a new session.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from reasonloop.tools.python import PythonConfig, PythonSession, _Runtime
from reasonloop.tools.sandbox import Sandbox, SandboxConfig

CODE = "print(1+1)"


def _median_s(fn: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _plain() -> None:
    subprocess.run([sys.executable, "-c", CODE], capture_output=True, check=True)


def python_rows(calls: int) -> list[tuple[str, float, str]]:
    """``(label, median ms, note)`` rows for the Python tool."""
    runtime = _Runtime(PythonConfig())
    prefix = str(__import__("pathlib").Path(runtime.spec.python).parent.parent)
    sandbox = Sandbox(SandboxConfig(ro_binds=((prefix, prefix),)))
    reason = sandbox.unavailable_reason()
    if reason is not None:
        raise SystemExit(f"sandbox unavailable: {reason}")
    plain = _median_s(_plain, calls // 10 or 5)
    fresh = _median_s(lambda: sandbox.run([runtime.spec.python, "-I", "-S", "-c", CODE]), calls // 10 or 5)

    session = PythonSession(runtime)
    session.run("0")
    warm = _median_s(lambda: session.run(CODE), calls)

    def new_session() -> None:
        s = PythonSession(runtime)
        s.run(CODE)
        s.close()

    new = _median_s(new_session, calls // 10 or 5)
    forks: list[PythonSession] = []
    fork = _median_s(lambda: forks.append(session.fork()), calls // 10 or 5)
    for f in forks:
        f.close()

    pool = [PythonSession(runtime) for _ in range(2)]
    for s in pool:
        s.run("0")
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as ex:
        list(ex.map(lambda i: pool[i % 2].run(CODE), range(calls)))
    per_s = calls / (time.perf_counter() - start)
    for s in [*pool, session]:
        s.close()
    ms = 1000.0
    return [
        ("plain subprocess.run([python, '-c'])", plain * ms, "baseline (unsandboxed)"),
        ("fresh bwrap sandbox per call", fresh * ms, f"{fresh / plain:.2f}x plain"),
        ("warm session round trip", warm * ms, f"{warm / plain:.3f}x plain (target <= 0.1x)"),
        ("new sandboxed session + first call", new * ms, f"{new / plain:.2f}x plain (target <= 1.5x)"),
        ("fork a session", fork * ms, f"{fork / new:.2f}x new session (target <= 1x)"),
        ("warm sessions, 2 workers", 1000.0 / per_s, f"{per_s:.0f} calls/s"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per warm measurement")
    args = parser.parse_args()
    rows = python_rows(args.calls)
    width = max(len(r[0]) for r in rows)
    print(f"{'python tool':<{width}}  {'median ms':>10}  note")
    for label, value, note in rows:
        print(f"{label:<{width}}  {value:>10.3f}  {note}")


if __name__ == "__main__":
    main()
