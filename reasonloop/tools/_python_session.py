"""Host side of interpreter sessions: a sandbox hosting one worker per branch.

A *family* is one sandbox (one ``bwrap``) started for an episode. Its first worker holds
the episode's interpreter state; ``fork()`` asks a worker to ``os.fork()`` inside the
sandbox, so the copy has the same variables, imports and (copied) files at the cost of a
fork, not of a new sandbox plus a replay. Branches of one episode therefore share the
sandbox's limits and can see each other's directories under ``/work``; episodes never
share a family.

The host trusts nothing the worker says beyond the JSON it parses: it enforces every
deadline itself, kills by host pid, and after each call checks the sandbox's process list
(its cgroup, or a /proc scan) so that nothing a cell started outlives the call.
"""

from __future__ import annotations

import array
import json
import os
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from reasonloop.tools._sandbox_proc import host_pid_for_ns_pid, kill_pids
from reasonloop.tools.sandbox import Sandbox, SandboxProcess

__all__ = ["Family", "ProtocolError", "WorkerChannel", "WorkerSpec"]

WORKER_PATH = "/opt/reasonloop/worker.py"
SITE_PATH = "/opt/reasonloop/site"


class ProtocolError(RuntimeError):
    """The worker died, went silent past its deadline, or sent something unreadable."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True, kw_only=True)
class WorkerSpec:
    """How to start a worker: interpreter, mounts and the worker's own settings."""

    python: str
    """Interpreter path (the same path inside the sandbox)."""
    ro_binds: tuple[tuple[str, str], ...]
    """Interpreter prefix, package directories and the worker script."""
    max_output_bytes: int
    """Cap on stdout and on stderr of one cell."""
    max_reply_bytes: int
    """Longest reply line accepted from a worker."""
    host_worker: str = ""
    """Host path of the worker script (used as is without a sandbox)."""
    host_site: tuple[str, ...] = ()
    """Host directories holding the packages (used as is without a sandbox)."""
    start_timeout_s: float = 30.0
    """How long a new sandbox may take to say hello."""


class WorkerChannel:
    """Newline-delimited JSON over one AF_UNIX socket, with host-side deadlines."""

    def __init__(self, sock: socket.socket, max_bytes: int) -> None:
        self.sock = sock
        self.max_bytes = max_bytes
        self._buf = b""

    def send(self, obj: dict[str, Any], fds: tuple[int, ...] = ()) -> None:
        data = json.dumps(obj, ensure_ascii=True).encode("ascii") + b"\n"
        self.sock.settimeout(5.0)
        try:
            if fds:
                self.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
            else:
                self.sock.sendall(data)
        except OSError as exc:
            raise ProtocolError(f"the interpreter is gone ({exc.strerror or exc})") from exc

    def recv(self, deadline: float) -> dict[str, Any]:
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProtocolError("deadline passed", timed_out=True)
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                raise ProtocolError("deadline passed", timed_out=True) from None
            except OSError as exc:
                raise ProtocolError(f"the interpreter is gone ({exc.strerror or exc})") from exc
            if not chunk:
                raise ProtocolError("the interpreter process ended unexpectedly")
            self._buf += chunk
            if len(self._buf) > self.max_bytes:
                raise ProtocolError("the interpreter sent an oversized reply")
        line, _, self._buf = self._buf.partition(b"\n")
        try:
            msg = json.loads(line)
        except ValueError as exc:
            raise ProtocolError("the interpreter sent an unreadable reply") from exc
        if not isinstance(msg, dict):
            raise ProtocolError("the interpreter sent an unreadable reply")
        return msg

    def close(self) -> None:
        self.sock.close()


@dataclass(eq=False)
class Family:
    """One sandbox and its live workers (``ns pid -> host pid``)."""

    proc: SandboxProcess
    spec: WorkerSpec
    workers: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stderr_file: Any = None
    holder: tuple[int, int] = (-1, -1)
    """``(ns pid, host pid)`` of the process that keeps the sandbox alive between branches."""
    sweep: bool = True
    """Whether workers kill leftover processes themselves (not without a pid namespace)."""

    @classmethod
    def start(cls, sandbox: Sandbox, spec: WorkerSpec) -> tuple[Family, WorkerChannel, int]:
        """Start a sandbox with one worker; returns ``(family, channel, worker ns pid)``.

        Raises:
            SandboxUnavailable: isolation cannot be set up here.
            ProtocolError: the worker did not start.
        """
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        errfile = tempfile.TemporaryFile()  # noqa: SIM115 - owned by the family, closed in shutdown()
        unsafe = sandbox.config.unsafe_no_sandbox
        site = list(spec.host_site) if unsafe else [SITE_PATH]
        settings: dict[str, Any] = {"site": site, "max_output_bytes": spec.max_output_bytes}
        if unsafe:  # nothing else ties an unsandboxed worker to this process
            settings["parent"] = os.getpid()
        config = json.dumps(settings)
        worker = spec.host_worker if unsafe else WORKER_PATH
        argv = [spec.python, "-I", "-S", "-B", worker, str(child_end.fileno()), config]
        try:
            proc = sandbox.spawn(argv, ro_binds=spec.ro_binds, pass_fds=(child_end.fileno(),), stderr=errfile.fileno())
        except BaseException:
            parent_end.close()
            errfile.close()
            raise
        finally:
            child_end.close()
        family = cls(proc=proc, spec=spec, stderr_file=errfile)
        chan = WorkerChannel(parent_end, spec.max_reply_bytes)
        try:
            hello = chan.recv(time.monotonic() + spec.start_timeout_s)
            ns_pid, holder = int(hello["pid"]), int(hello["holder"])
        except (ProtocolError, KeyError, TypeError, ValueError) as exc:
            detail = family.startup_error()
            chan.close()
            family.shutdown()
            raise ProtocolError(f"the sandboxed interpreter did not start: {detail or exc}") from exc
        family.sweep = not sandbox.config.unsafe_no_sandbox
        family.holder = (holder, host_pid_for_ns_pid(proc.members(), holder) or -1)
        family.register(ns_pid)
        return family, chan, ns_pid

    def startup_error(self) -> str:
        if self.stderr_file is None:
            return ""
        self.proc.kill()
        self.stderr_file.seek(0)
        return self.stderr_file.read(4000).decode("utf-8", "replace").strip()

    def register(self, ns_pid: int) -> None:
        host = host_pid_for_ns_pid(self.proc.members(), ns_pid)
        with self.lock:
            self.workers[ns_pid] = host if host is not None else -1

    def keep(self) -> list[int]:
        with self.lock:
            return [*self.workers, self.holder[0]]

    def end_worker(self, ns_pid: int) -> None:
        """End one branch: the whole sandbox when it was the last, else its worker and leftovers."""
        with self.lock:
            host = self.workers.pop(ns_pid, None)
            last = not self.workers
        if last:
            self.shutdown()
            return
        if host is not None and host > 0:
            kill_pids({host})
        self.enforce(ended_sessions={host} if host else set())

    def enforce(self, *, ended_sessions: set[int] | None = None) -> int:
        """Kill processes that are neither the sandbox's own nor a live worker; returns the count."""
        with self.lock:
            live = {h for h in self.workers.values() if h > 0}
        base = {self.proc.pid, self.proc.init_pid() or -1, self.holder[1]}
        killed = 0
        for _ in range(20):
            extra = self.proc.members() - base - live
            if not extra:
                break
            sessions = live | {self.proc.pid, self.holder[1]}
            victims = {p for p in extra if _stray(p, sessions, ended_sessions or set())}
            if not victims:
                break
            kill_pids(victims)
            killed += len(victims)
            time.sleep(0.002)
        return killed

    def healthy(self, ns_pid: int) -> bool:
        """Whether the sandbox's holder and this worker are alive and not being killed.

        A cell can take its own sandbox down (``os.kill(-1, SIGKILL)`` kills the holder but
        not the caller); the worker then dies a moment later. A SIGKILL already pending
        counts as dead, so the session notices within the call that caused it.
        """
        with self.lock:
            worker = self.workers.get(ns_pid, -1)
        return all(_running(pid) for pid in (self.holder[1], worker) if pid > 0)

    def holder_alive(self) -> bool:
        """Whether the process keeping the sandbox alive between branches still runs."""
        return self.holder[1] <= 0 or _running(self.holder[1])

    def shutdown(self) -> None:
        self.proc.close()
        if self.stderr_file is not None:
            self.stderr_file.close()
            self.stderr_file = None


_SIGKILL_BIT = 1 << (signal.SIGKILL - 1)


def _running(pid: int) -> bool:
    """Alive, not a zombie, and no SIGKILL pending (read from ``/proc/PID/status``)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            fields = dict(line.split(b":", 1) for line in fh.read().splitlines() if b":" in line)
        if fields.get(b"State", b"").strip()[:1] in (b"Z", b"X"):
            return False
        pending = int(fields.get(b"SigPnd", b"0").strip(), 16) | int(fields.get(b"ShdPnd", b"0").strip(), 16)
    except (OSError, ValueError):
        return False
    return not pending & _SIGKILL_BIT


def _stray(pid: int, live_sessions: set[int], ended_sessions: set[int]) -> bool:
    """Whether ``pid`` belongs to no live worker's session (or to one just killed)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        fields = stat[stat.rfind(b")") + 2 :].split()
        state, sid = fields[0], int(fields[3])
    except (OSError, IndexError, ValueError):
        return False
    if state == b"Z":
        return False
    return sid in ended_sessions or sid not in live_sessions
