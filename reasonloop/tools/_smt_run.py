"""Running a checker process under limits: the swappable boundary of the Z3 checker.

A :class:`ProcessRunner` takes an argv, the bytes for stdin and :class:`Limits`, and
returns a :class:`RunOutcome`. :func:`run_limited` is the local implementation: a child
in its own session (process group) with rlimits (address space, CPU, file size 0,
open files, no core; set by ``prlimit`` where it exists), a scrubbed environment, a fresh temporary working directory,
capped stdout/stderr, and a wall-clock deadline after which the whole group gets
SIGKILL. The group is always killed and reaped before returning, so nothing survives
a call. The bubblewrap sandbox runner can replace it without touching the checker.
"""

from __future__ import annotations

import functools
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Protocol

__all__ = ["Limits", "ProcessRunner", "RunOutcome", "find_z3_binary", "run_limited"]

_MB = 1 << 20
_SAFE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Resource limits of one checker process."""

    wall_s: float
    """Wall-clock deadline (startup, parsing and solving); the group is SIGKILLed after it."""
    cpu_s: int
    """RLIMIT_CPU in seconds."""
    address_space_mb: int
    """RLIMIT_AS in MiB (virtual memory of the process)."""
    max_output_bytes: int = _MB
    """Bytes kept from stdout and from stderr each; the process is killed past this."""

    def __post_init__(self) -> None:
        if self.wall_s <= 0 or self.cpu_s < 1 or self.address_space_mb < 16 or self.max_output_bytes < 1:
            raise ValueError(f"invalid limits: {self}")


@dataclass(frozen=True, kw_only=True)
class RunOutcome:
    """What a limited process did."""

    returncode: int | None
    """Exit status; negative for a signal (as in :mod:`subprocess`); None if it never started."""
    stdout: bytes
    stderr: bytes
    timed_out: bool
    """Killed at the wall-clock deadline."""
    output_truncated: bool
    """Killed because stdout or stderr passed ``max_output_bytes``."""
    duration_s: float
    start_error: str | None = None
    """Why the process could not be started, if it could not."""


class ProcessRunner(Protocol):
    """Runs one process under limits (local rlimits today; the sandbox can take its place)."""

    def __call__(self, argv: Sequence[str], *, stdin: bytes, limits: Limits) -> RunOutcome: ...


def _preexec(limits: Limits) -> Callable[[], None]:
    def apply() -> None:
        as_bytes = limits.address_space_mb * _MB
        resource.setrlimit(resource.RLIMIT_AS, (as_bytes, as_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # the checker writes no file, ever
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    return apply


@functools.cache
def _prlimit() -> str | None:
    return shutil.which("prlimit", path="/usr/bin:/bin")


def _limited_argv(argv: Sequence[str], limits: Limits) -> tuple[list[str], Callable[[], None] | None]:
    """Apply rlimits through ``prlimit`` when it exists: a ``preexec_fn`` would force a
    full fork of this (possibly large) process instead of vfork."""
    tool = _prlimit()
    if tool is None:
        return list(argv), _preexec(limits)
    as_bytes = limits.address_space_mb * _MB
    flags = [f"--as={as_bytes}", f"--cpu={limits.cpu_s}:{limits.cpu_s + 1}", "--fsize=0", "--core=0", "--nofile=64"]
    return [tool, *flags, "--", *argv], None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _pump(proc: subprocess.Popen[bytes], deadline: float, cap: int) -> tuple[bytes, bytes, bool, bool]:
    """Read stdout and stderr until both close, the deadline passes or a cap is exceeded."""
    assert proc.stdout is not None and proc.stderr is not None
    bufs = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    timed_out = truncated = False
    with selectors.DefaultSelector() as sel:
        for fd in bufs:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            for key, _ in sel.select(timeout=left):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                buf = bufs[key.fd]
                buf += chunk
                if len(buf) > cap:
                    del buf[cap:]
                    truncated = True
            if truncated:
                break
    return bytes(bufs[proc.stdout.fileno()]), bytes(bufs[proc.stderr.fileno()]), timed_out, truncated


def run_limited(argv: Sequence[str], *, stdin: bytes, limits: Limits) -> RunOutcome:
    """Run ``argv`` with ``stdin`` under ``limits`` in a fresh temporary directory.

    Never raises for a failing child: a program that cannot start is reported in
    ``start_error``.
    """
    start = time.monotonic()
    deadline = start + limits.wall_s
    program = shutil.which(argv[0]) if argv else None
    if program is None:
        return RunOutcome(
            returncode=None, stdout=b"", stderr=b"", timed_out=False, output_truncated=False, duration_s=0.0,
            start_error=f"{argv[0] if argv else '(empty argv)'} is not an executable program",
        )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="rl-smt-") as work:
        stdin_path = Path(work) / ".stdin"
        stdin_path.write_bytes(stdin)  # a file, not a pipe: no writer thread, no deadlock
        try:
            command, preexec = _limited_argv(argv, limits)
            with stdin_path.open("rb") as fin:
                proc = subprocess.Popen(  # argv is built by the checker, never by the input
                    command,
                    stdin=fin,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    cwd=work,
                    env=dict(_SAFE_ENV),
                    close_fds=True,
                    start_new_session=True,
                    preexec_fn=preexec,  # only setrlimit calls between fork and exec
                )
        except OSError as exc:
            return RunOutcome(
                returncode=None, stdout=b"", stderr=b"", timed_out=False, output_truncated=False,
                duration_s=time.monotonic() - start, start_error=f"{type(exc).__name__}: {exc}",
            )  # fmt: skip
        try:
            out, err, timed_out, truncated = _pump(proc, deadline, limits.max_output_bytes)
            if not (timed_out or truncated):
                # the pipes close a moment before the exit status exists: wait for it, or a
                # clean exit would be reported as SIGKILL
                try:
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    timed_out = True
        finally:
            _kill_group(proc)  # kills anything the child left behind in its group
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
    return RunOutcome(
        returncode=proc.returncode, stdout=out, stderr=err, timed_out=timed_out, output_truncated=truncated,
        duration_s=time.monotonic() - start,
    )  # fmt: skip


@functools.cache
def find_z3_binary() -> str | None:
    """Path of the ``z3`` executable shipped by the ``z3-solver`` wheel (or on PATH).

    The wheel installs it as a script (``<prefix>/bin/z3``), next to the Python that
    runs this code; the lookup is cached because it reads package metadata.
    """
    candidates: list[Path] = []
    try:
        for entry in metadata.distribution("z3-solver").files or []:
            if entry.name == "z3" and entry.parent.name == "bin":
                candidates.append(Path(str(entry.locate())).resolve())
    except metadata.PackageNotFoundError:
        pass
    candidates.append(Path(sysconfig.get_path("scripts")) / "z3")
    candidates.append(Path(sys.executable).parent / "z3")
    on_path = shutil.which("z3")
    if on_path:
        candidates.append(Path(on_path))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None
