"""Does a one-shot sandbox run leave a process behind for someone else to reap?

Run by the tests as ``python zombie_check.py``. This process makes itself a child
subreaper, so a sandbox process orphaned by ``bwrap`` is re-parented to it instead of
to a host init that may or may not reap it: the check then sees every such orphan, at
once and regardless of the host. It runs :meth:`Sandbox.run` several times for each way
a run can end (exit 0, a non-zero exit, a wall-clock kill with a child still running, a
command that cannot be executed, a sandbox that fails to set up) and prints one JSON
line ``{"statuses": {kind: [status, ...]}, "left": [[pid, state, comm], ...]}`` where
``left`` lists this process's children after the runs (it starts none of its own), or
``{"skip": reason}`` where no sandbox can start. It kills and reaps what it found.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time
from pathlib import Path

from reasonloop.tools.sandbox import Sandbox, SandboxConfig

__all__ = ["RUNS", "children", "main"]

_PR_SET_CHILD_SUBREAPER = 36
PY = os.path.realpath(sys.executable)
PREFIX = str(Path(PY).parent.parent)
RUNS = 3
"""Runs of each kind."""


def _py(code: str) -> list[str]:
    return [PY, "-I", "-S", "-c", code]


_KINDS: dict[str, tuple[list[str], float | None, tuple[tuple[str, str], ...]]] = {
    "ok": (_py("print('hi')"), None, ()),
    "error": (_py("raise SystemExit(3)"), None, ()),
    "timeout": (_py("import subprocess, time\nsubprocess.Popen(['sleep', '60'])\ntime.sleep(60)"), 0.5, ()),
    "not_executable": (["/nonexistent-reasonloop-command"], None, ()),
    "setup_failure": (_py("print('ran')"), None, (("/nonexistent-reasonloop-path", "/x"),)),
}


def children(parent: int) -> list[tuple[int, str, str]]:
    """``(pid, state, comm)`` of every process whose parent is ``parent``, zombies included."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # the command name may contain spaces and parentheses: parse after the last ')'
        comm = stat[stat.find(b"(") + 1 : stat.rfind(b")")].decode(errors="replace")
        fields = stat[stat.rfind(b")") + 2 :].split()
        if int(fields[1]) == parent:
            out.append((int(entry), fields[0].decode(), comm))
    return sorted(out)


def _reap(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def main() -> None:
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit("prctl(PR_SET_CHILD_SUBREAPER) failed")
    sandbox = Sandbox(SandboxConfig(timeout_s=5, ro_binds=((PREFIX, PREFIX),)))
    reason = sandbox.unavailable_reason()
    if reason is not None:
        print(json.dumps({"skip": reason}), flush=True)
        return
    statuses: dict[str, list[str]] = {}
    for kind, (argv, timeout_s, binds) in _KINDS.items():
        for _ in range(RUNS):
            result = sandbox.run(argv, timeout_s=timeout_s, ro_binds=binds)
            statuses.setdefault(kind, []).append(str(result.status))
    # an orphan is re-parented here before bwrap's exit is reaped, so this needs no wait;
    # the pause only lets a process that is still exiting show its final state
    time.sleep(0.2)
    left = children(os.getpid())
    _reap([pid for pid, _, _ in left])
    print(json.dumps({"statuses": statuses, "left": left}), flush=True)


if __name__ == "__main__":
    main()
