"""A sandboxed Python interpreter tool with per-episode sessions.

    tool = python_tool(PythonConfig(timeout_s=5))
    with Toolset([tool]).open("episode-1") as tools:
        await tools.call(ToolCall(id="1", name="python", arguments={"code": "x = 21"}))
        result = await tools.call(ToolCall(id="2", name="python", arguments={"code": "x * 2"}))
        # result.output == "Out: 42"

A session is a warm interpreter inside its own sandbox (:mod:`reasonloop.tools.sandbox`):
variables, imports and files in its work dir persist across calls of one episode and are
gone with it. ``fork()`` copies a session by ``os.fork()`` of its worker inside the
sandbox: the copy has the full interpreter state (random generators included) and costs a
fork plus a copy of the work dir, less than a new session; the trade-off is that branches
of one episode share that sandbox's limits and can read each other's work dirs (replaying
the history in a new sandbox would isolate them but costs a new session plus the re-run,
and code with side effects or randomness would not replay faithfully). Stateless mode
starts a fresh sandbox per call.

Sessions of a tool (:func:`python_tool`) start from a small pool of sandboxes that were
started in the background (:mod:`._python_pool`; ``PythonConfig.pool_size``, 0 turns it
off): each pooled sandbox serves exactly one session and is destroyed with it.

Every call returns a :class:`CellResult` (tool calls: a ``ToolResult``): ``ok``, ``error``
(the code raised; traceback trimmed to the cell), ``timeout`` (the session was killed and
is restarted on the next call: its state is lost, and the result says so), ``crashed``
(the interpreter died, e.g. a memory limit), ``refused`` (no sandbox could start) or
``invalid`` (code too long or not text).
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum

from reasonloop.errors import ConfigError
from reasonloop.tools._python_runtime import Runtime as _Runtime
from reasonloop.tools._python_session import Family, ProtocolError, WorkerChannel
from reasonloop.tools.base import Tool, ToolContext, tool
from reasonloop.tools.sandbox import SandboxConfig, SandboxUnavailable
from reasonloop.trajectory.schema import ToolResult, ToolStatus

__all__ = [
    "CellResult",
    "CellStatus",
    "PythonConfig",
    "PythonSession",
    "PythonSessionFactory",
    "python_tool",
    "run_python",
]

_SANDBOX_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "NUMEXPR_NUM_THREADS": "1", "MPLBACKEND": "Agg"}  # fmt: skip
_LOST = "the interpreter was restarted: variables, imports and files from earlier calls are lost"


@dataclass(kw_only=True)
class PythonConfig:
    """Settings of the Python tool."""

    timeout_s: float = 10.0
    """Wall-clock limit of one call; past it the session is killed (state lost)."""
    packages: tuple[str, ...] = ("numpy", "sympy")
    """Installed distributions importable inside (their requirements come along)."""
    stateless: bool = False
    """Run every call in a fresh sandbox instead of a per-episode session."""
    max_code_chars: int = 200_000
    """Longer code is rejected without running."""
    max_output_chars: int = 16_000
    """Length of the tool output the model reads (the full capped text stays in ``data``)."""
    python: str | None = None
    """Interpreter to run inside (default: the one running this process)."""
    sandbox: SandboxConfig = field(default_factory=lambda: SandboxConfig(env=dict(_SANDBOX_ENV)))
    """Isolation limits; ``sandbox.max_output_bytes`` caps stdout and stderr of a call."""
    pool_size: int = 2
    """Sandboxes a tool keeps started in the background for its next sessions (each serves one
    session and is never reused; 0 starts every session cold). Filling begins with the first session."""

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ConfigError("PythonConfig.timeout_s must be > 0")
        if self.pool_size < 0:
            raise ConfigError("PythonConfig.pool_size must be >= 0")
        if self.max_code_chars < 1 or self.max_output_chars < 1:
            raise ConfigError("PythonConfig.max_code_chars and max_output_chars must be >= 1")
        if isinstance(self.packages, str):
            raise ConfigError("PythonConfig.packages is a tuple of distribution names, not a string")
        exe = os.path.realpath(self.python or sys.executable)
        if not os.access(exe, os.X_OK):
            raise ConfigError(f"PythonConfig.python: {exe!r} is not an executable")
        self.python = exe


class CellStatus(StrEnum):
    """Outcome of one call."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    CRASHED = "crashed"
    REFUSED = "refused"
    INVALID = "invalid"


_TO_TOOL_STATUS = {
    CellStatus.OK: ToolStatus.OK,
    CellStatus.ERROR: ToolStatus.ERROR,
    CellStatus.TIMEOUT: ToolStatus.TIMEOUT,
    CellStatus.CRASHED: ToolStatus.ERROR,
    CellStatus.REFUSED: ToolStatus.REFUSED,
    CellStatus.INVALID: ToolStatus.INVALID_ARGUMENTS,
}


@dataclass(kw_only=True)
class CellResult:
    """What one call produced."""

    status: CellStatus
    stdout: str = ""
    stderr: str = ""
    display: str | None = None
    """``repr`` of the last expression's value (``None`` when it was ``None`` or absent)."""
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    """Traceback trimmed to the cell's own frames."""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    duration_s: float = 0.0
    state_lost: bool = False
    """The session was restarted: earlier variables, imports and files are gone."""
    message: str | None = None
    """Why the call did not run normally, in words the model can act on."""

    def format(self) -> str:
        """Model-readable text: output, stderr, the value, the traceback and notices."""
        parts = [self.stdout.rstrip("\n")] if self.stdout else []
        if self.stderr:
            parts.append("[stderr]\n" + self.stderr.rstrip("\n"))
        if self.display is not None:
            parts.append(f"Out: {self.display}")
        if self.traceback:
            parts.append(self.traceback.rstrip("\n"))
        if self.stdout_truncated or self.stderr_truncated:
            parts.append("[output truncated]")
        if self.message:
            parts.append(f"[{self.message}]")
        return "\n".join(parts)

    def to_tool_result(self) -> ToolResult:
        error = None
        if self.status is CellStatus.ERROR:
            error = f"{self.error_type}: {self.error_message}"
        elif self.status is not CellStatus.OK:
            error = self.message or self.status.value
        data = asdict(self)
        data["status"] = self.status.value
        return ToolResult(status=_TO_TOOL_STATUS[self.status], output=self.format(), error=error,
                          duration_s=self.duration_s, truncated=self.stdout_truncated or self.stderr_truncated,
                          data=data)  # fmt: skip


class PythonSession:
    """A persistent interpreter in its own sandbox; thread-safe, one call at a time."""

    def __init__(self, runtime: _Runtime, family: Family | None = None, chan: WorkerChannel | None = None,
                 ns_pid: int = 0) -> None:  # fmt: skip
        self._rt = runtime
        self._family, self._chan, self._ns_pid = family, chan, ns_pid
        self._lock = threading.Lock()
        self._closed = False
        self._notice: str | None = None

    @classmethod
    def open(cls, config: PythonConfig | None = None) -> PythonSession:
        """A session that starts its sandbox on the first call."""
        return cls(_Runtime(config or PythonConfig()))

    @property
    def started(self) -> bool:
        return self._family is not None

    def run(self, code: str, *, timeout_s: float | None = None) -> CellResult:
        """Run ``code`` in this session; never raises for what the code does."""
        cfg = self._rt.config
        limit = cfg.timeout_s if timeout_s is None else timeout_s
        if not isinstance(code, str):
            return CellResult(status=CellStatus.INVALID, message="code must be a string")
        if len(code) > cfg.max_code_chars:
            return CellResult(status=CellStatus.INVALID,
                              message=f"code is {len(code)} characters; the limit is {cfg.max_code_chars}")  # fmt: skip
        with self._lock:
            if self._closed:
                return CellResult(status=CellStatus.REFUSED, message="this interpreter session is closed")
            start = time.monotonic()
            if self._family is not None and not self._family.healthy(self._ns_pid):
                self._drop()
                self._notice = f"the interpreter had stopped; {_LOST}"
            failed = self._ensure_started()
            if failed is not None:
                return failed
            assert self._family is not None and self._chan is not None
            try:
                self._chan.send(
                    {
                        "op": "run",
                        "code": code,
                        "timeout_s": limit,
                        "keep": self._family.keep(),
                        "sweep": self._family.sweep,
                    }
                )
                reply = self._chan.recv(start + limit)
            except ProtocolError as exc:
                # a cell that kills the sandbox's holder ends the sandbox, and with it the worker,
                # often before the reply is out: say so rather than blame a limit
                stopped = not exc.timed_out and not self._family.holder_alive()
                self._drop()
                if exc.timed_out:
                    return CellResult(status=CellStatus.TIMEOUT, duration_s=time.monotonic() - start, state_lost=True,
                                      message=f"timed out after {limit:g} s; {_LOST}")  # fmt: skip
                why = "this call stopped the interpreter's sandbox" if stopped else f"{exc} (a memory, file or process limit?)"
                return CellResult(status=CellStatus.CRASHED, duration_s=time.monotonic() - start, state_lost=True,
                                  message=f"{why}; {_LOST}")  # fmt: skip
            self._family.enforce(ended_sessions={self._family.workers.get(self._ns_pid, -1)})
            result = _cell_from_reply(reply)
            if self._notice:
                result.message, result.state_lost, self._notice = self._notice, True, None
            if not self._family.healthy(self._ns_pid):  # the cell took its own sandbox down
                self._drop()
                result.state_lost = True
                result.message = f"this call stopped the interpreter's sandbox; {_LOST}"
            return result

    def _ensure_started(self) -> CellResult | None:
        if self._family is not None:
            return None
        try:
            self._family, self._chan, self._ns_pid = self._rt.start()
        except SandboxUnavailable as exc:
            return CellResult(status=CellStatus.REFUSED, message=f"no sandbox: {exc}")
        except (ProtocolError, OSError) as exc:
            return CellResult(status=CellStatus.REFUSED, message=str(exc))
        return None

    def _drop(self) -> None:
        """Kill this session's worker; shut the sandbox down when it was the last branch."""
        family, chan, ns_pid = self._family, self._chan, self._ns_pid
        self._family, self._chan = None, None
        if family is None:
            return
        family.end_worker(ns_pid)
        if chan is not None:
            chan.close()

    def fork(self) -> PythonSession:
        """An independent copy: same variables, imports and files; later changes do not mix."""
        with self._lock:
            child = PythonSession(self._rt)
            if self._closed or self._family is None or self._chan is None:
                if self._notice:
                    child._notice = self._notice
                return child
            family = self._family
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                deadline = time.monotonic() + self._rt.spec.start_timeout_s
                self._chan.send({"op": "fork"}, fds=(theirs.fileno(),))
                theirs.close()
                reply = self._chan.recv(deadline)
                if "pid" not in reply:
                    raise ProtocolError(str(reply.get("error", "fork refused")))
                chan = WorkerChannel(mine, self._rt.spec.max_reply_bytes)
                ns_pid = int(chan.recv(deadline)["pid"])
            except (ProtocolError, KeyError, TypeError, ValueError) as exc:
                mine.close()
                theirs.close()
                self._drop()
                self._notice = child._notice = f"forking failed ({exc}); {_LOST}"
                return child
            family.register(ns_pid)
            child._family, child._chan, child._ns_pid = family, chan, ns_pid
            return child

    def close(self) -> None:
        """Kill the interpreter (idempotent)."""
        with self._lock:
            self._closed = True
            self._drop()

    def __enter__(self) -> PythonSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cell_from_reply(reply: dict[str, object]) -> CellResult:
    error = reply.get("error")
    err = error if isinstance(error, dict) else {}
    display = reply.get("display")
    return CellResult(
        status=CellStatus.ERROR if err else CellStatus.OK,
        stdout=str(reply.get("stdout", "")), stderr=str(reply.get("stderr", "")),
        display=str(display) if display is not None else None,
        error_type=str(err["type"]) if err else None, error_message=str(err.get("message", "")) if err else None,
        traceback=str(err.get("traceback", "")) if err else None,
        stdout_truncated=bool(reply.get("stdout_truncated")), stderr_truncated=bool(reply.get("stderr_truncated")),
        duration_s=_as_float(reply.get("duration_s")),
    )  # fmt: skip


def _as_float(value: object) -> float:
    """A number from the worker's reply (which the host does not trust), else 0."""
    return float(value) if isinstance(value, int | float) and value == value else 0.0


class PythonSessionFactory:
    """:class:`~reasonloop.tools.base.SessionFactory` of interpreter sessions (one per episode)."""

    def __init__(self, config: PythonConfig | None = None) -> None:
        self.runtime = _Runtime(config or PythonConfig(), pooled=True)

    def open(self) -> PythonSession:
        return PythonSession(self.runtime)

    def fork(self, session: PythonSession) -> PythonSession:
        return session.fork()

    def close(self, session: PythonSession) -> None:
        session.close()


def _run_stateless(runtime: _Runtime, code: str, timeout_s: float | None = None) -> CellResult:
    session = PythonSession(runtime)
    try:
        return session.run(code, timeout_s=timeout_s)
    finally:
        session.close()


def run_python(code: str, config: PythonConfig | None = None, *, timeout_s: float | None = None) -> CellResult:
    """Run ``code`` once in a fresh sandbox (stateless)."""
    return _run_stateless(_Runtime(config or PythonConfig()), code, timeout_s)


def python_tool(config: PythonConfig | None = None, *, name: str = "python") -> Tool:
    """The sandboxed Python interpreter as a :class:`~reasonloop.tools.base.Tool`.

    Args:
        config: Limits, packages and mode; defaults to :class:`PythonConfig`.
        name: Tool name the model calls.
    """
    cfg = config or PythonConfig()
    factory = PythonSessionFactory(cfg)
    stateless = cfg.stateless

    def python(code: str, context: ToolContext) -> ToolResult:
        """Run Python code in a sandboxed interpreter and return its output.

        Variables, imports and files persist across calls within the episode, and the value
        of the last expression is shown (like a notebook cell). numpy and sympy can be
        imported; there is no network access.

        Args:
            code: Python source code to run.
        """
        session = context.session
        if stateless or not isinstance(session, PythonSession):
            return _run_stateless(factory.runtime, code).to_tool_result()
        return session.run(code).to_tool_result()

    return tool(python, name=name, timeout_s=cfg.timeout_s + 5.0, max_output_chars=cfg.max_output_chars,
                sessions=None if stateless else factory)  # fmt: skip
