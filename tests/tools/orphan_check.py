"""Does a process holding interpreter sandboxes take them along when it is SIGKILLed?

Run by the tests as ``python orphan_check.py MODE`` with MODE one of :data:`MODES`. This
process makes itself a child subreaper (so orphans are reparented to it, not to a host
init that may never reap them), forks a *holder* that opens sandboxes the MODE's way and
reports ready, lists the holder's descendants, SIGKILLs the holder and reaps for a few
seconds. It prints one JSON line ``{"pids": [...], "survivors": [...]}`` and kills any
survivor before it exits.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

from reasonloop.tools._sandbox_proc import descendants
from reasonloop.tools.python import PythonConfig, PythonSession, PythonSessionFactory
from reasonloop.tools.sandbox import SandboxConfig

__all__ = ["MODES", "main"]

_PR_SET_CHILD_SUBREAPER = 36
MODES = ("unsafe-session", "unsafe-fork", "pool", "unsafe-pool")


def _hold(mode: str, ready_fd: int, work_root: str) -> None:
    """In the holder: open sandboxes, say ready, wait to be killed."""
    unsafe = mode.startswith("unsafe")
    sandbox = SandboxConfig(unsafe_no_sandbox=unsafe, work_root=work_root)
    config = PythonConfig(timeout_s=5, pool_size=2, sandbox=sandbox)
    if mode in ("unsafe-session", "unsafe-fork"):
        session = PythonSession.open(config)
        ok = session.run("import time\n1").display == "1"
        busy = [session]
        if mode == "unsafe-fork":  # a branch is the child of a worker, not of the process the host started
            branch = session.fork()
            ok = ok and branch.run("2").display == "2"
            busy.append(branch)
        # killed while busy, a worker cannot notice its socket closing: only the kernel can end it
        for s in busy:
            threading.Thread(target=s.run, args=("time.sleep(600)",), kwargs={"timeout_s": 600}, daemon=True).start()
        time.sleep(0.3)
    else:
        factory = PythonSessionFactory(config)
        session = factory.open()
        ok = session.run("1").display == "1"
        assert factory.runtime.pool is not None
        ok = ok and factory.runtime.pool.wait_ready(30.0)
    os.write(ready_fd, b"1" if ok else b"0")
    time.sleep(600)


def _reap_until_gone(pids: set[int], timeout_s: float) -> set[int]:
    """Reap orphans until none of ``pids`` is alive; returns those still alive."""
    deadline = time.monotonic() + timeout_s
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        alive = {p for p in alive if os.path.exists(f"/proc/{p}")}
        time.sleep(0.02)
    return alive


def main() -> None:
    mode = sys.argv[1]
    if mode not in MODES:
        raise SystemExit(f"mode must be one of {MODES}")
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit("prctl(PR_SET_CHILD_SUBREAPER) failed")
    # the killed holder cannot remove its sandboxes' work dirs: keep them where this process can
    work_root = tempfile.mkdtemp(prefix="reasonloop-orphan-check-")
    ready_r, ready_w = os.pipe()
    holder = os.fork()
    if holder == 0:
        os.close(ready_r)
        try:
            _hold(mode, ready_w, work_root)
        finally:
            os._exit(1)
    os.close(ready_w)
    ok = os.read(ready_r, 1) == b"1"
    pids = descendants(holder)
    os.kill(holder, signal.SIGKILL)
    survivors = _reap_until_gone(pids | {holder}, 10.0)
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    _reap_until_gone(survivors, 5.0)
    shutil.rmtree(work_root, ignore_errors=True)
    print(json.dumps({"ready": ok, "pids": sorted(pids), "survivors": sorted(survivors)}), flush=True)


if __name__ == "__main__":
    main()
