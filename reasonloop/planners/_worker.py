"""Entry point of the isolated planner processes (``python -m reasonloop.planners._worker``).

``--once DIR`` runs the job in DIR (limits already set by the parent's ``preexec_fn``).
``--serve`` is the warm fork server: it imports unified-planning once, then reads one
JSON request per line on stdin and forks a limited child per request, answering
``{"id", "pid"}`` at the fork and ``{"id", "exit"}`` when the child is reaped.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import gc
import importlib
import json
import os
import resource
import select
import signal
import sys
import traceback
from typing import Any

__all__ = ["EXIT_MEMORY", "apply_limits", "main"]

EXIT_MEMORY = 71
"""Exit status of a job process that ran out of memory before it could write its result."""

_PR_SET_CHILD_SUBREAPER = 36
_WARM_DOMAIN = "(define (domain w) (:predicates (p)) (:action a :parameters () :precondition (p) :effect (not (p))))"
_WARM_PROBLEM = "(define (problem w) (:domain w) (:init (p)) (:goal (not (p))))"


def apply_limits(limits: dict[str, Any]) -> None:
    """Set this process's rlimits (inherited by everything it starts)."""
    mem = int(limits["memory_mb"]) * 1024 * 1024
    cpu = int(limits["cpu_s"])
    fsize = int(limits["max_file_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 2))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _set_subreaper() -> None:
    """Orphaned grandchildren re-parent to this process, so it can reap and kill them."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _run_in(workdir: str) -> int:
    """Run ``workdir/job.json`` and write ``workdir/result.json``; returns the exit code."""
    from reasonloop.planners.jobs import run_job
    from reasonloop.planners.runner import kill_tree

    os.chdir(workdir)
    os.environ["TMPDIR"] = workdir
    import tempfile

    tempfile.tempdir = workdir
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    out = os.open("stdout.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    err = os.open("stderr.txt", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(out, 1)
    os.dup2(err, 2)
    _set_subreaper()
    code = 0
    try:
        with open("job.json", encoding="utf-8") as fh:
            job = json.load(fh)
        result = run_job(job)
        with open("result.tmp", "w", encoding="utf-8") as fh:
            json.dump(result, fh)
        os.replace("result.tmp", "result.json")
    except MemoryError:
        code = EXIT_MEMORY
    except OSError as exc:  # ENOMEM surfaces as OSError from file and process calls
        code = EXIT_MEMORY if exc.errno == errno.ENOMEM else 70
    except BaseException:
        code = 70
        try:
            traceback.print_exc()
        except BaseException:  # not even a traceback fits: the job exhausted its memory
            code = EXIT_MEMORY
    if code != 0:
        with contextlib.suppress(Exception):
            for pid in _children():  # planner binaries left behind by the failure
                kill_tree(pid)
    return code


def _children() -> list[int]:
    from reasonloop.planners.runner import _descendants

    return _descendants(os.getpid())


def _warm_up() -> None:
    """Import unified-planning and its engines and run both job kinds once, so forked children start warm."""
    import unified_planning.shortcuts as shortcuts

    from reasonloop.planners.jobs import ENGINE_MODULES
    from reasonloop.planners.validate import validate_in_process

    shortcuts.get_environment().credits_stream = None
    for module in ENGINE_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    validate_in_process(_WARM_DOMAIN, _WARM_PROBLEM, "(a)")


def _fork_job(request: dict[str, Any], wake_fds: tuple[int, int]) -> int:
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            os.setsid()
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for fd in wake_fds:
                os.close(fd)
            apply_limits(request["limits"])
            code = _run_in(request["workdir"])
        except MemoryError:
            code = EXIT_MEMORY
        except OSError as exc:
            code = EXIT_MEMORY if exc.errno == errno.ENOMEM else 70
        finally:
            os._exit(code)
    return pid


def _send(message: dict[str, Any]) -> None:
    os.write(1, (json.dumps(message) + "\n").encode())


def _reap(running: dict[int, int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        job_id = running.pop(pid, None)
        if job_id is not None:
            _send({"id": job_id, "exit": os.waitstatus_to_exitcode(status)})


def serve() -> int:
    """The fork-server loop; returns when stdin reaches EOF."""
    _warm_up()
    # Move everything imported so far out of the collector's reach: collections in the
    # children then do not touch (and copy) the parent's pages.
    gc.freeze()
    _set_subreaper()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    running: dict[int, int] = {}
    buffer = b""
    _send({"ready": True})
    while True:
        ready, _, _ = select.select([0, wake_r], [], [])
        if wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(wake_r, 4096):
                    pass
            _reap(running)
        if 0 not in ready:
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            break
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            request = json.loads(line)
            pid = _fork_job(request, (wake_r, wake_w))
            running[pid] = int(request["id"])
            _send({"id": request["id"], "pid": pid})
        _reap(running)
    from reasonloop.planners.runner import kill_tree

    for pid in list(running):
        kill_tree(pid)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--serve"]:
        return serve()
    if len(args) == 2 and args[0] == "--once":
        return _run_in(args[1])
    print("usage: python -m reasonloop.planners._worker (--serve | --once DIR)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
