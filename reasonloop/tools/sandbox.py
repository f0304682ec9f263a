"""One isolated process runner for every input a model writes.

    sandbox = Sandbox(SandboxConfig(timeout_s=5))
    result = sandbox.run(["/usr/bin/python3", "-I", "-c", "print(1 + 1)"])
    assert result.status is SandboxStatus.OK and result.stdout == "2\\n"

Isolation (see ``SECURITY.md``): bubblewrap with every namespace unshared (no network,
own pid/ipc/uts/cgroup namespaces, a user namespace that cannot nest another one), all
capabilities dropped, a cleared environment, read-only ``/usr`` and interpreter, a
size-capped private ``/tmp``, the per-session work dir (mounted at ``/work``) as the only
writable bind, no ``/sys``; a seccomp deny list (:mod:`._sandbox_seccomp`); hard rlimits
and, where a cgroup is writable, memory and pids limits for the whole sandbox, both put
on ``bwrap``'s child before it starts the command (:mod:`._sandbox_launch`). ``bwrap``
itself starts with a scrubbed environment so the host's secrets are not readable through
``/proc/1/environ`` inside.

The parent enforces a wall-clock deadline by killing the sandbox's init process (the
kernel then kills everything in the pid namespace and ``bwrap`` reaps it, so no zombie is
left to an init that does not reap), caps stdout/stderr, passes no inherited fds, and
reads produced files with :func:`read_output_file` (``O_NOFOLLOW``, size cap).

A one-shot :meth:`Sandbox.run` runs its command as the pid namespace's init
(``--as-pid-1``): ``bwrap``'s own reaper reports the command's exit and ``bwrap`` exits
before reaping it, leaving it a zombie of the host's pid 1 (which in a container may
never reap), while its only child ``bwrap`` always reaps. As pid 1 the command ignores
signals it has no handler for sent from inside (its own ``kill``; ``abort`` ends in
SIGSEGV); the deadline's SIGKILL and the kernel's limits (CPU, memory, faults) still
end it.

Fail closed: when bubblewrap or user namespaces are missing the runner refuses with a
message that says how to fix it. ``SandboxConfig(unsafe_no_sandbox=True)`` (or
``REASONLOOP_UNSAFE_NO_SANDBOX=1``) runs without isolation and logs a warning every time.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from reasonloop.errors import ConfigError
from reasonloop.tools import _spawner as spawner
from reasonloop.tools._sandbox_io import communicate, echo
from reasonloop.tools._sandbox_launch import (
    AS_PID_1,
    LAUNCH_FLAGS,
    SANDBOX_WORKDIR,
    bwrap_args,
    hand_over,
    prlimit_prefix,
    rlimits,
    set_rlimits,
)
from reasonloop.tools._sandbox_proc import Cgroup, SandboxProcess, safe_read_file
from reasonloop.tools._sandbox_seccomp import SeccompUnsupported, build_filter

__all__ = [
    "SANDBOX_WORKDIR",
    "Sandbox",
    "SandboxConfig",
    "SandboxProcess",
    "SandboxResult",
    "SandboxStatus",
    "SandboxUnavailable",
    "read_output_file",
]

logger = logging.getLogger(__name__)

UNSAFE_ENV_VAR = "REASONLOOP_UNSAFE_NO_SANDBOX"
_HOST_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
_LAUNCH_TIMEOUT_S = 30.0
_INSTALL_HINT = (
    "install bubblewrap (`sudo apt-get install bubblewrap`, or `make setup`) and make sure user namespaces "
    "are enabled (`sysctl user.max_user_namespaces` > 0; on Ubuntu 24.04+ also "
    "`sysctl kernel.apparmor_restrict_unprivileged_userns=0`). To run model-written code WITHOUT isolation "
    f"anyway, set {UNSAFE_ENV_VAR}=1 (unsafe)."
)


class SandboxUnavailable(RuntimeError):
    """The isolation cannot be set up on this machine; the message says how to fix it."""


class SandboxStatus(StrEnum):
    """How a sandboxed run ended."""

    OK = "ok"
    ERROR = "error"
    """The program exited with a non-zero status."""
    TIMEOUT = "timeout"
    KILLED = "killed"
    """A signal ended it (a limit, e.g. memory or CPU time)."""
    REFUSED = "refused"
    """The sandbox could not be started; nothing ran."""


@dataclass(kw_only=True)
class SandboxConfig:
    """Limits and mounts of a sandbox."""

    timeout_s: float = 30.0
    """Default wall-clock limit of one run (the whole process tree is killed after it)."""
    memory_mb: int = 2048
    """Address-space limit of each process (RLIMIT_AS)."""
    total_memory_mb: int = 4096
    """Memory limit of the whole sandbox (cgroup), which RLIMIT_AS cannot give over forked children."""
    max_pids: int = 128
    """Process/thread limit of the whole sandbox (cgroup)."""
    cpu_s: int = 600
    """CPU-seconds limit of each process (RLIMIT_CPU)."""
    file_size_mb: int = 64
    """Largest file a process may write (RLIMIT_FSIZE)."""
    max_open_files: int = 256
    """RLIMIT_NOFILE of each process."""
    tmp_size_mb: int = 64
    """Size of the private ``/tmp`` (and ``/dev/shm``) tmpfs."""
    max_output_bytes: int = 1 << 20
    """Cap on captured stdout and on stderr (each); the rest is dropped and flagged."""
    ro_binds: tuple[tuple[str, str], ...] = ()
    """Extra ``(host_path, sandbox_path)`` pairs mounted read-only."""
    env: dict[str, str] = field(default_factory=dict)
    """Environment inside the sandbox (added to a minimal PATH/LANG/HOME)."""
    seccomp: bool = True
    """Install the seccomp deny list."""
    cgroup: bool = True
    """Use a per-sandbox cgroup for memory and pids limits where one is writable."""
    uid: int = 1000
    """User and group id inside the sandbox (mapped to the caller's id outside)."""
    hostname: str = "sandbox"
    """Hostname inside the sandbox."""
    work_root: str | None = None
    """Host directory where per-session work dirs are created (default: the system temp dir)."""
    bwrap: str = "bwrap"
    """bubblewrap executable (name or path)."""
    unsafe_no_sandbox: bool = False
    """Run WITHOUT isolation (only rlimits, a scrubbed environment and the deadline). Unsafe."""

    def __post_init__(self) -> None:
        for name in ("memory_mb", "total_memory_mb", "max_pids", "cpu_s", "file_size_mb", "max_open_files",
                     "tmp_size_mb", "max_output_bytes"):  # fmt: skip
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"SandboxConfig.{name} must be >= 1")
        if self.timeout_s <= 0:
            raise ConfigError("SandboxConfig.timeout_s must be > 0")
        if self.max_open_files < 16:
            raise ConfigError("SandboxConfig.max_open_files must be >= 16 (interpreters need a few)")
        for pair in self.ro_binds:
            if len(pair) != 2 or not str(pair[1]).startswith("/"):
                raise ConfigError(f"SandboxConfig.ro_binds entries are (host, absolute sandbox path): {pair!r}")
        if not 0 <= self.uid < 2**31:
            raise ConfigError("SandboxConfig.uid must be a valid uid")
        if os.environ.get(UNSAFE_ENV_VAR) == "1":
            self.unsafe_no_sandbox = True


@dataclass(kw_only=True)
class SandboxResult:
    """What a sandboxed run produced (text only)."""

    status: SandboxStatus
    exit_code: int | None = None
    """Exit status; negative for a signal; ``None`` when it never ran."""
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    duration_s: float = 0.0
    killed_reason: str | None = None
    """Why the runner ended it (``"timeout"``) or why it could not start."""
    notes: list[str] = field(default_factory=list)
    """Isolation pieces that were skipped on this machine, with the reason."""


def read_output_file(workdir: str | os.PathLike[str], relpath: str, *, max_bytes: int = 1 << 20) -> tuple[bytes, bool]:
    """Read a file the sandbox wrote under ``workdir`` (no symlinks followed, capped)."""
    return safe_read_file(workdir, relpath, max_bytes=max_bytes)


class Sandbox:
    """Runs commands under the isolation described in the module docstring."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._probe: str | bool | None = False  # False: not probed yet
        self._features: set[str] = set()
        self._prlimit = shutil.which("prlimit", path=_HOST_ENV["PATH"])
        self._probe_lock = threading.Lock()
        self._limits_by_exec = False
        """Whether ``prlimit`` sets the rlimits before ``bwrap`` runs (a setuid ``bwrap``)."""
        self.notes: list[str] = []

    # -- availability -------------------------------------------------------------------------

    def unavailable_reason(self) -> str | None:
        """``None`` when sandboxes can start here, else why not and how to fix it (probed once)."""
        if self.config.unsafe_no_sandbox:
            return None
        with self._probe_lock:
            if self._probe is False:
                self._probe = self._run_probe()
        return self._probe if isinstance(self._probe, str) else None

    def _run_probe(self) -> str | None:
        exe = shutil.which(self.config.bwrap) or shutil.which(self.config.bwrap, path=_HOST_ENV["PATH"])
        if exe is None:
            return f"bubblewrap ({self.config.bwrap!r}) is not installed; {_INSTALL_HINT}"
        self.config.bwrap = exe
        try:
            helptext = subprocess.run([exe, "--help"], capture_output=True, text=True, env=_HOST_ENV, timeout=10).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            return f"cannot run {exe}: {exc}; {_INSTALL_HINT}"
        if not all(flag in helptext for flag in LAUNCH_FLAGS):
            return f"bubblewrap at {exe} is too old (no {' or '.join(LAUNCH_FLAGS)}); {_INSTALL_HINT}"
        self._features = {flag for flag in ("--disable-userns", "--size", AS_PID_1) if flag in helptext}
        if "--disable-userns" not in self._features:
            self.notes.append("bwrap is older than 0.8: nested user namespaces are blocked by seccomp only")
        if AS_PID_1 not in self._features:
            self.notes.append(f"bwrap has no {AS_PID_1}: each finished run leaves a zombie to the host's init")
        with tempfile.TemporaryDirectory(prefix="reasonloop-probe-", dir=self.config.work_root) as wd:
            try:
                # cat echoes a line back: proof the command runs, and it is still running when
                # the sandbox is killed (bwrap then reaps its init; a command that exits on its
                # own can leave the init to the host's init)
                proc = self._launch(["/usr/bin/cat" if Path("/usr/bin/cat").exists() else "/bin/cat"], Path(wd), (), None,
                                    (), subprocess.PIPE, subprocess.PIPE, subprocess.PIPE)  # fmt: skip
            except PermissionError as exc:
                # setuid bubblewrap: its child is not ours to limit; prlimit applies the limits before bwrap
                if self._prlimit is None or self._limits_by_exec:
                    return f"cannot put rlimits on the sandbox ({exc}); install prlimit (util-linux); {_INSTALL_HINT}"
                self._limits_by_exec = True
                return self._run_probe()
            except OSError as exc:
                return f"bubblewrap cannot create namespaces here ({str(exc)[:300]}); {_INSTALL_HINT}"
            echoed = echo(proc.popen, b"ok\n", timeout_s=_LAUNCH_TIMEOUT_S)
            proc.kill()
            err = proc.popen.stderr.read(4000) if proc.popen.stderr is not None and echoed != b"ok\n" else b""
            proc.close()
        if echoed != b"ok\n":
            return f"bubblewrap cannot start a sandbox here ({err.decode(errors='replace').strip()[:300]}); {_INSTALL_HINT}"
        return None

    def require(self) -> None:
        """Raise :class:`SandboxUnavailable` unless sandboxes can start."""
        reason = self.unavailable_reason()
        if reason is not None:
            raise SandboxUnavailable(reason)

    def _sandbox_env(self) -> dict[str, str]:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": SANDBOX_WORKDIR, "USER": "sandbox",
               "TMPDIR": "/tmp"}  # fmt: skip
        env.update(self.config.env)
        return env

    # -- running ------------------------------------------------------------------------------

    def spawn(self, argv: Sequence[str], *, workdir: str | os.PathLike[str] | None = None,
              ro_binds: Sequence[tuple[str, str]] = (), pass_fds: Sequence[int] = (),
              stdin: int | None = subprocess.DEVNULL, stdout: int | None = subprocess.DEVNULL,
              stderr: int | None = subprocess.DEVNULL, as_pid_1: bool = False) -> SandboxProcess:  # fmt: skip
        """Start ``argv`` in a new sandbox and return the running process (persistent mode).

        ``as_pid_1`` runs ``argv`` as the sandbox's init instead of under ``bwrap``'s reaper
        (see the module docstring): nothing is left to reap when ``argv`` exits by itself,
        and orphans inside stay zombies until the sandbox ends.

        Raises:
            SandboxUnavailable: isolation cannot be set up here (nothing was started).
            OSError: this sandbox failed to start (nothing of ``argv`` ran).
        """
        self.require()
        owns = workdir is None
        wd = Path(tempfile.mkdtemp(prefix="reasonloop-sbx-", dir=self.config.work_root)) if owns else Path(workdir)  # type: ignore[arg-type]
        cgroup: Cgroup | None = None
        try:
            if self.config.unsafe_no_sandbox:
                return self._spawn_unsafe(argv, wd, owns, pass_fds, stdin, stdout, stderr)
            if self.config.cgroup:
                cgroup, reason = Cgroup.create(memory_bytes=self.config.total_memory_mb << 20,
                                               max_pids=self.config.max_pids)  # fmt: skip
                if cgroup is None and reason not in self.notes:
                    self.notes.append(f"cgroup limits skipped: {reason}")
            return self._launch(argv, wd, ro_binds, cgroup, pass_fds, stdin, stdout, stderr, owns=owns,
                                as_pid_1=as_pid_1)  # fmt: skip
        except BaseException:
            if cgroup is not None:
                cgroup.remove()
            if owns:
                shutil.rmtree(wd, ignore_errors=True)
            raise

    def _launch(self, argv: Sequence[str], wd: Path, ro_binds: Sequence[tuple[str, str]], cgroup: Cgroup | None,
                pass_fds: Sequence[int], stdin: int | None, stdout: int | None, stderr: int | None, *,
                owns: bool = False, as_pid_1: bool = False) -> SandboxProcess:  # fmt: skip
        """Start ``bwrap`` and hand its child the cgroup and rlimits (see :mod:`._sandbox_launch`)."""
        info_r, info_w = os.pipe()
        block_r, block_w = os.pipe()
        fds = {"--info-fd": info_w, "--block-fd": block_r}
        seccomp_fd = self._seccomp_fd()
        if seccomp_fd is not None:
            fds["--seccomp"] = seccomp_fd
        prefix = prlimit_prefix(self.config, self._prlimit) if self._limits_by_exec and self._prlimit else []
        cmd = [*prefix, *bwrap_args(self.config, self._features, workdir=wd, ro_binds=ro_binds,
                                    env=self._sandbox_env(), fds=fds, as_pid_1=as_pid_1), *argv]  # fmt: skip
        try:
            popen = spawner.popen(cmd, stdin=stdin, stdout=stdout, stderr=stderr, env=dict(_HOST_ENV), close_fds=True,
                                     pass_fds=(*fds.values(), *pass_fds), start_new_session=True, cwd="/")  # fmt: skip
        except BaseException:
            for fd in (info_r, block_w):
                os.close(fd)
            raise
        finally:
            for fd in fds.values():
                os.close(fd)
        try:
            limits = [] if self._limits_by_exec else rlimits(self.config)
            init = hand_over(popen, info_r, block_w, cgroup=cgroup, limits=limits, timeout_s=_LAUNCH_TIMEOUT_S)
        except BaseException as exc:
            proc = SandboxProcess(popen, cgroup=None, init_pid=None, workdir=wd, owns_workdir=False)
            proc.kill()
            detail = popen.stderr.read(2000).decode("utf-8", "replace").strip() if popen.stderr is not None else ""
            proc.close()
            if isinstance(exc, OSError) and detail:
                raise OSError(exc.errno, f"{exc.strerror or exc}: {detail}") from exc
            raise
        finally:
            os.close(info_r)
            os.close(block_w)
        return SandboxProcess(popen, cgroup=cgroup, init_pid=init, workdir=wd, owns_workdir=owns)

    def _spawn_unsafe(self, argv: Sequence[str], wd: Path, owns: bool, pass_fds: Sequence[int], stdin: int | None,
                      stdout: int | None, stderr: int | None) -> SandboxProcess:  # fmt: skip
        logger.warning("UNSAFE: running model-written code WITHOUT a sandbox (%s=1 or unsafe_no_sandbox=True)",
                       UNSAFE_ENV_VAR)  # fmt: skip
        prefix = prlimit_prefix(self.config, self._prlimit) if self._prlimit else []
        popen = spawner.popen(
            [*prefix, *argv], stdin=stdin, stdout=stdout, stderr=stderr,
            env={**_HOST_ENV, **self._sandbox_env(), "HOME": str(wd)}, close_fds=True, pass_fds=tuple(pass_fds),
            start_new_session=True, cwd=str(wd),
            # without prlimit the limits are set between fork and exec (slower: forces fork over vfork)
            preexec_fn=None if self._prlimit else functools.partial(set_rlimits, self.config),
        )  # fmt: skip
        return SandboxProcess(popen, cgroup=None, init_pid=None, workdir=wd, owns_workdir=owns)

    def _seccomp_fd(self) -> int | None:
        if not self.config.seccomp:
            return None
        try:
            program = build_filter()
        except SeccompUnsupported as exc:
            if str(exc) not in self.notes:
                self.notes.append(f"seccomp skipped: {exc}")
            return None
        fd = os.memfd_create("reasonloop-seccomp", os.MFD_CLOEXEC)
        os.write(fd, program)
        os.lseek(fd, 0, os.SEEK_SET)
        return fd

    def run(self, argv: Sequence[str], *, stdin: bytes | str | None = None, timeout_s: float | None = None,
            workdir: str | os.PathLike[str] | None = None, ro_binds: Sequence[tuple[str, str]] = ()) -> SandboxResult:  # fmt: skip
        """Run ``argv`` to completion in a fresh sandbox; never raises for what the program does.

        Args:
            argv: Command as seen inside the sandbox (paths must be mounted: ``/usr`` is).
            stdin: Data fed to the program's stdin.
            timeout_s: Wall-clock limit (default ``config.timeout_s``).
            workdir: Host directory mounted writable at ``/work``; a temporary one (deleted
                afterwards) when ``None``.
            ro_binds: Extra ``(host, sandbox)`` read-only mounts for this run.
        """
        start = time.monotonic()
        limit = self.config.timeout_s if timeout_s is None else timeout_s
        try:
            proc = self.spawn(argv, workdir=workdir, ro_binds=ro_binds, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, as_pid_1=True)  # fmt: skip
        except (SandboxUnavailable, OSError) as exc:
            return SandboxResult(status=SandboxStatus.REFUSED, killed_reason=str(exc), notes=list(self.notes))
        try:
            data = stdin.encode("utf-8", "surrogateescape") if isinstance(stdin, str) else (stdin or b"")
            out, err, timed_out = communicate(proc.popen, data, start + limit, self.config.max_output_bytes)
            if timed_out:
                proc.kill()
        finally:
            proc.close()
        code = proc.popen.returncode
        if timed_out:
            status = SandboxStatus.TIMEOUT
        elif code == 0:
            status = SandboxStatus.OK
        else:
            status = SandboxStatus.KILLED if code is not None and (code < 0 or code > 128) else SandboxStatus.ERROR
        return SandboxResult(
            status=status, exit_code=code, stdout=out[0].decode("utf-8", "replace"), stderr=err[0].decode("utf-8", "replace"),
            stdout_truncated=out[1], stderr_truncated=err[1], duration_s=time.monotonic() - start,
            killed_reason=f"wall-clock limit of {limit:g} s" if timed_out else None, notes=list(self.notes),
        )  # fmt: skip
