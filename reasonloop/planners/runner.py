"""Run planner jobs in isolated, limited processes.

A job is a JSON object (see :mod:`reasonloop.planners.jobs`); it runs in a process of its
own session and process group, in a fresh working directory (Fast Downward writes
``output.sas`` into its working directory), under ``RLIMIT_AS``/``RLIMIT_CPU``/
``RLIMIT_FSIZE`` limits, and is killed with its whole process tree when the wall-clock
deadline passes. Only JSON crosses the boundary: the job reads ``job.json`` and writes
``result.json`` in its directory.

Two runners implement :class:`JobRunner`:

- :class:`ForkServerRunner` (default) keeps one warm worker with unified-planning
  imported and forks a child per job, so a job costs a fork (~10 ms), not an
  interpreter start and a 1 s import.
- :class:`SubprocessRunner` starts a fresh interpreter per job (``preexec_fn`` sets the
  limits): slower, simplest, and the shape a bubblewrap sandbox runner takes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from reasonloop.errors import ConfigError

__all__ = [
    "ForkServerRunner",
    "JobHandle",
    "JobOutcome",
    "JobRunner",
    "Limits",
    "SubprocessRunner",
    "kill_tree",
]

MAX_RESULT_BYTES = 8 * 1024 * 1024
_WORKER = "reasonloop.planners._worker"


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Resource limits of one job."""

    wall_s: float = 60.0
    """Wall-clock seconds before the job's process tree is killed."""
    memory_mb: int = 2048
    """Address-space limit of each process of the job (RLIMIT_AS), in MiB."""
    cpu_s: int | None = None
    """CPU seconds per process (RLIMIT_CPU); defaults to ``wall_s`` + 5."""
    max_file_mb: int = 256
    """Largest file a job may write (RLIMIT_FSIZE), in MiB."""
    startup_s: float = 60.0
    """Time allowed for the worker to start before the job's clock begins."""

    def __post_init__(self) -> None:
        if self.wall_s <= 0:
            raise ConfigError("Limits.wall_s must be > 0")
        if self.memory_mb < 64:
            raise ConfigError("Limits.memory_mb must be >= 64")
        if self.cpu_s is not None and self.cpu_s < 1:
            raise ConfigError("Limits.cpu_s must be >= 1")
        if self.max_file_mb < 1 or self.startup_s <= 0:
            raise ConfigError("Limits.max_file_mb must be >= 1 and startup_s > 0")

    def as_json(self) -> dict[str, Any]:
        cpu = self.cpu_s if self.cpu_s is not None else int(self.wall_s) + 5
        return {"memory_mb": self.memory_mb, "cpu_s": cpu, "max_file_mb": self.max_file_mb}


@dataclass(frozen=True, kw_only=True)
class JobOutcome:
    """How a job ended. ``result`` is the JSON it wrote, if any."""

    result: dict[str, Any] | None
    """The job's ``result.json``; ``None`` when it wrote none (killed, crashed)."""
    exit_code: int | None = None
    """Exit status; negative for a signal (as in :attr:`subprocess.Popen.returncode`)."""
    timed_out: bool = False
    """The wall-clock deadline passed and the tree was killed."""
    cancelled: bool = False
    """The caller killed the job (e.g. a portfolio got its answer elsewhere)."""
    stderr_tail: str = ""
    """Last lines of the job's stderr, for engine errors."""
    wall_s: float = 0.0


class JobHandle(Protocol):
    """A started job."""

    def outcome(self) -> JobOutcome:
        """Wait for the job (enforcing the wall-clock limit) and return how it ended."""
        ...

    def kill(self) -> None:
        """Kill the job's process tree now (idempotent)."""
        ...


class JobRunner(Protocol):
    """Starts jobs under limits; implementations differ in how the process is made."""

    def start(self, job: dict[str, Any], limits: Limits) -> JobHandle:
        """Start ``job`` and return at once."""
        ...

    def warm(self) -> None:
        """Start any worker now, so the first job does not pay for it (may be a no-op)."""
        ...

    def close(self) -> None:
        """Release worker processes (idempotent)."""
        ...


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        kids = children.get(pid, [])
        out += kids
        frontier += kids
    return out


def kill_tree(root: int) -> None:
    """SIGKILL ``root`` and every descendant, including ones in other sessions.

    unified-planning starts planner binaries with ``start_new_session=True``, so killing
    the job's process group would miss them. The tree is stopped first (a stopped
    process cannot fork or be re-parented away), then killed.
    """
    for sig in (signal.SIGSTOP, signal.SIGSTOP, signal.SIGKILL):
        for pid in [root, *_descendants(root)]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


def _child_env(workdir: str) -> dict[str, str]:
    """A scrubbed environment: no secrets of the caller reach the planner."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMPDIR": workdir, "HOME": workdir, "LANG": "C.UTF-8"}
    env["PYTHONPATH"] = package_root
    return env


def _new_workdir(job: dict[str, Any]) -> str:
    workdir = tempfile.mkdtemp(prefix="reasonloop-plan-")
    with open(os.path.join(workdir, "job.json"), "w", encoding="utf-8") as fh:
        json.dump(job, fh)
    return workdir


def _collect(workdir: str, **fields: Any) -> JobOutcome:
    """Read the job's result and stderr (size-capped, no symlinks) and remove its directory."""
    result: dict[str, Any] | None = None
    try:
        fd = os.open(os.path.join(workdir, "result.json"), os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(MAX_RESULT_BYTES + 1)
        if len(data) <= MAX_RESULT_BYTES:
            loaded = json.loads(data)
            result = loaded if isinstance(loaded, dict) else None
    except (OSError, ValueError):
        result = None
    tail = ""
    try:
        fd = os.open(os.path.join(workdir, "stderr.txt"), os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - 2000))
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        pass
    shutil.rmtree(workdir, ignore_errors=True)
    return JobOutcome(result=result, stderr_tail=tail, **fields)


class _SubprocessHandle:
    def __init__(self, proc: subprocess.Popen[bytes], workdir: str, limits: Limits) -> None:
        self._proc = proc
        self._workdir = workdir
        self._limits = limits
        self._start = time.monotonic()
        self._cancelled = False

    def kill(self) -> None:
        self._cancelled = True
        if self._proc.poll() is None:
            kill_tree(self._proc.pid)

    def outcome(self) -> JobOutcome:
        timed_out = False
        try:
            self._proc.wait(timeout=self._limits.wall_s + self._limits.startup_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_tree(self._proc.pid)
            self._proc.wait()
        wall = time.monotonic() - self._start
        return _collect(
            self._workdir, exit_code=self._proc.returncode, timed_out=timed_out, cancelled=self._cancelled, wall_s=wall
        )


class SubprocessRunner:
    """One fresh interpreter per job; limits set by ``preexec_fn``.

    The interpreter start and the unified-planning import (about 1 s here) are not
    counted against ``wall_s``: ``startup_s`` is added to the deadline.
    """

    def __init__(self, *, python: str = sys.executable) -> None:
        self._python = python

    def start(self, job: dict[str, Any], limits: Limits) -> JobHandle:
        from reasonloop.planners._worker import apply_limits

        workdir = _new_workdir(job)
        stderr = open(os.path.join(workdir, "stderr.txt"), "wb")  # noqa: SIM115 - handed to the child
        with stderr:
            proc = subprocess.Popen(
                [self._python, "-m", _WORKER, "--once", workdir],
                cwd=workdir,
                env=_child_env(workdir),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
                close_fds=True,
                preexec_fn=lambda: apply_limits(limits.as_json()),
            )
        return _SubprocessHandle(proc, workdir, limits)

    def warm(self) -> None:
        return None

    def close(self) -> None:
        return None


@dataclass(kw_only=True)
class _Pending:
    workdir: str
    limits: Limits
    started: threading.Event
    done: threading.Event
    pid: int | None = None
    exit_code: int | None = None
    start_time: float = 0.0


class _ForkHandle:
    def __init__(self, server: ForkServerRunner, pending: _Pending) -> None:
        self._server = server
        self._p = pending
        self._cancelled = False

    def kill(self) -> None:
        self._cancelled = True
        if self._p.started.wait(self._p.limits.startup_s) and self._p.pid and not self._p.done.is_set():
            kill_tree(self._p.pid)

    def outcome(self) -> JobOutcome:
        p = self._p
        if not p.started.wait(p.limits.startup_s) or p.pid is None:
            self._server._forget(p)
            return _collect(p.workdir, exit_code=None, cancelled=self._cancelled)
        remaining = p.limits.wall_s - (time.monotonic() - p.start_time)
        timed_out = not p.done.wait(max(0.0, remaining))
        if timed_out:
            kill_tree(p.pid)
            p.done.wait(10.0)
        wall = time.monotonic() - p.start_time
        return _collect(p.workdir, exit_code=p.exit_code, timed_out=timed_out, cancelled=self._cancelled, wall_s=wall)


class ForkServerRunner:
    """A warm worker that forks one limited child per job.

    The worker imports unified-planning and the engine plugins once, then forks; each
    child calls ``setsid``, sets its rlimits and works in its own directory. The worker
    is started lazily, reaps children (it is their subreaper) and exits when this
    object is closed or the calling process dies (its stdin reaches EOF).
    """

    def __init__(self, *, python: str = sys.executable) -> None:
        self._python = python
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._pending: dict[int, _Pending] = {}
        self._next_id = 0
        self._ready = threading.Event()

    @property
    def worker_pid(self) -> int | None:
        """Process id of the running worker, if one is running."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def _ensure_worker(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        home = tempfile.gettempdir()
        proc = subprocess.Popen(
            [self._python, "-m", _WORKER, "--serve"],
            env=_child_env(home),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        self._proc = proc
        self._ready = threading.Event()
        threading.Thread(
            target=self._read_replies, args=(proc, self._ready), daemon=True, name="planner-worker-reader"
        ).start()
        return proc

    def _read_replies(self, proc: subprocess.Popen[bytes], ready: threading.Event) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            if msg.get("ready"):
                ready.set()
                continue
            with self._lock:
                pending = self._pending.get(msg.get("id", -1))
                if pending is None:
                    continue
                if "pid" in msg:
                    pending.pid, pending.start_time = int(msg["pid"]), time.monotonic()
                    pending.started.set()
                if "exit" in msg:
                    pending.exit_code = int(msg["exit"])
                    self._pending.pop(msg["id"], None)
                    pending.done.set()
        ready.set()
        with self._lock:  # the worker died: fail whatever it still owed
            for pending in self._pending.values():
                pending.started.set()
                pending.done.set()
            self._pending.clear()

    def _forget(self, pending: _Pending) -> None:
        with self._lock:
            for key, value in list(self._pending.items()):
                if value is pending:
                    self._pending.pop(key)

    def start(self, job: dict[str, Any], limits: Limits) -> JobHandle:
        workdir = _new_workdir(job)
        pending = _Pending(workdir=workdir, limits=limits, started=threading.Event(), done=threading.Event())
        line = None
        with self._lock:
            proc = self._ensure_worker()
            self._next_id += 1
            self._pending[self._next_id] = pending
            line = json.dumps({"id": self._next_id, "workdir": workdir, "limits": limits.as_json()}) + "\n"
            try:
                assert proc.stdin is not None
                proc.stdin.write(line.encode())
                proc.stdin.flush()
            except OSError:
                pending.started.set()
                pending.done.set()
        return _ForkHandle(self, pending)

    def warm(self, timeout_s: float = 120.0) -> None:
        """Start the worker and wait until it has imported unified-planning."""
        with self._lock:
            self._ensure_worker()
            ready = self._ready
        ready.wait(timeout_s)

    def close(self) -> None:
        """Stop the worker; it kills the jobs still running."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_tree(proc.pid)
            proc.wait()

    def __enter__(self) -> ForkServerRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
