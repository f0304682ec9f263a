"""One isolated process runner for every input a model writes.

    sandbox = Sandbox(SandboxConfig(timeout_s=5))
    result = sandbox.run(["/usr/bin/python3", "-I", "-c", "print(1 + 1)"])
    assert result.status is SandboxStatus.OK and result.stdout == "2\\n"

Isolation (see ``SECURITY.md``): bubblewrap with every namespace unshared (no network,
own pid/ipc/uts/cgroup namespaces, a user namespace that cannot nest another one), all
capabilities dropped, a cleared environment, read-only ``/usr`` and interpreter, a
size-capped private ``/tmp``, the per-session work dir (mounted at ``/work``) as the only
writable bind, no ``/sys``; a seccomp deny list (:mod:`._sandbox_seccomp`); rlimits set by
``prlimit`` before ``bwrap`` runs; memory and pids limits in a per-sandbox cgroup where
one is writable. ``bwrap`` itself starts with a scrubbed environment so the host's secrets
are not readable through ``/proc/1/environ`` inside.

The parent enforces a wall-clock deadline by killing the sandbox's init process (the
kernel then kills everything in the pid namespace and ``bwrap`` reaps it, so no zombie is
left to an init that does not reap), caps stdout/stderr, passes no inherited fds, and
reads produced files with :func:`read_output_file` (``O_NOFOLLOW``, size cap).

Fail closed: when bubblewrap or user namespaces are missing the runner refuses with a
message that says how to fix it. ``SandboxConfig(unsafe_no_sandbox=True)`` (or
``REASONLOOP_UNSAFE_NO_SANDBOX=1``) runs without isolation and logs a warning every time.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from reasonloop.errors import ConfigError
from reasonloop.tools._sandbox_proc import Cgroup, descendants, kill_pids, safe_read_file
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

SANDBOX_WORKDIR = "/work"
"""Where the per-session work dir appears inside the sandbox."""
UNSAFE_ENV_VAR = "REASONLOOP_UNSAFE_NO_SANDBOX"
_HOST_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
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


class SandboxProcess:
    """A running sandbox (persistent mode): kill it, list its processes, clean up."""

    def __init__(self, popen: subprocess.Popen[bytes], *, cgroup: Cgroup | None, info_fd: int | None,
                 workdir: Path, owns_workdir: bool) -> None:  # fmt: skip
        self.popen = popen
        self.cgroup = cgroup
        self.workdir = workdir
        self._owns_workdir = owns_workdir
        self._info_fd = info_fd
        self._init_pid: int | None = None
        # a session that is dropped without close() (or left open at exit) still releases
        # its processes, cgroup and work dir
        self._finalizer = weakref.finalize(self, _release, popen, cgroup, workdir if owns_workdir else None)

    @property
    def pid(self) -> int:
        """Host pid of the outer ``bwrap`` process."""
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def init_pid(self) -> int | None:
        """Host pid of the sandbox's pid-namespace init (``bwrap``'s reaper)."""
        if self._init_pid is None and self._info_fd is not None:
            try:
                raw = os.read(self._info_fd, 4096)
                self._init_pid = int(json.loads(raw.decode())["child-pid"])
            except (OSError, ValueError, KeyError, TypeError):
                return None
            finally:
                os.close(self._info_fd)
                self._info_fd = None
        return self._init_pid

    def members(self) -> set[int]:
        """Host pids of every live process of this sandbox, ``bwrap`` included."""
        if not self.alive():
            return set()
        if self.cgroup is not None:
            return self.cgroup.pids()
        return descendants(self.pid) | {self.pid}

    def kill(self) -> None:
        """SIGKILL everything inside and reap ``bwrap`` (idempotent)."""
        if self.popen.poll() is None:
            init = self.init_pid()
            if init is not None:
                # Killing the namespace's init makes the kernel kill every process in it,
                # and bwrap (its parent) reaps it, so nothing is orphaned to the host init.
                kill_pids({init})
                try:
                    self.popen.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    pass
            if self.popen.poll() is None:
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                if self.cgroup is not None:
                    kill_pids(self.cgroup.pids())
                self.popen.wait()

    def close(self) -> None:
        """Kill, then remove the cgroup and (if this process made it) the work dir."""
        self._finalizer.detach()
        self.kill()
        if self._info_fd is not None:
            os.close(self._info_fd)
            self._info_fd = None
        for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()
        if self.cgroup is not None:
            self.cgroup.remove()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _release(popen: subprocess.Popen[bytes], cgroup: Cgroup | None, workdir: Path | None) -> None:
    if popen.poll() is None:
        try:
            os.killpg(popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if cgroup is not None:
            kill_pids(cgroup.pids())
        popen.wait()
    if cgroup is not None:
        cgroup.remove()
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)


class Sandbox:
    """Runs commands under the isolation described in the module docstring."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._probe: str | bool | None = False  # False: not probed yet
        self._features: set[str] = set()
        self._prlimit = shutil.which("prlimit", path=_HOST_ENV["PATH"])
        self.notes: list[str] = []

    # -- availability -------------------------------------------------------------------------

    def unavailable_reason(self) -> str | None:
        """``None`` when sandboxes can start here, else why not and how to fix it (probed once)."""
        if self.config.unsafe_no_sandbox:
            return None
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
        self._features = {flag for flag in ("--disable-userns", "--size", "--info-fd") if flag in helptext}
        if "--disable-userns" not in self._features:
            self.notes.append("bwrap is older than 0.8: nested user namespaces are blocked by seccomp only")
        argv = [exe, "--unshare-all", "--unshare-user", "--die-with-parent", "--ro-bind", "/usr", "/usr",
                *self._lib_links(), "--", "/usr/bin/true"]  # fmt: skip
        if not Path("/usr/bin/true").exists():
            argv[-1] = "/bin/true"
        proc = subprocess.run(argv, capture_output=True, text=True, env=_HOST_ENV, timeout=30)
        if proc.returncode != 0:
            return f"bubblewrap cannot create namespaces here ({proc.stderr.strip()[:300]}); {_INSTALL_HINT}"
        return None

    def require(self) -> None:
        """Raise :class:`SandboxUnavailable` unless sandboxes can start."""
        reason = self.unavailable_reason()
        if reason is not None:
            raise SandboxUnavailable(reason)

    # -- command construction -----------------------------------------------------------------

    @staticmethod
    def _lib_links() -> list[str]:
        args: list[str] = []
        for name in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
            host = Path("/") / name
            if host.is_symlink():
                args += ["--symlink", os.readlink(host), f"/{name}"]
            elif host.is_dir():
                args += ["--ro-bind", str(host), f"/{name}"]
        return args

    def _sandbox_env(self) -> dict[str, str]:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": SANDBOX_WORKDIR, "USER": "sandbox",
               "TMPDIR": "/tmp"}  # fmt: skip
        env.update(self.config.env)
        return env

    def _bwrap_args(self, workdir: Path, ro_binds: Sequence[tuple[str, str]], seccomp_fd: int | None,
                    info_fd: int | None) -> list[str]:  # fmt: skip
        cfg = self.config
        a = [cfg.bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--clearenv",
             "--cap-drop", "ALL", "--uid", str(cfg.uid), "--gid", str(cfg.uid), "--hostname", cfg.hostname]  # fmt: skip
        if "--disable-userns" in self._features:
            a.append("--disable-userns")
        a += ["--ro-bind", "/usr", "/usr", *self._lib_links()]
        for etc in ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives"):
            a += ["--ro-bind-try", etc, etc]
        for host, inside in (*cfg.ro_binds, *ro_binds):
            a += ["--ro-bind", str(host), str(inside)]
        size = ["--size", str(cfg.tmp_size_mb << 20)] if "--size" in self._features else []
        a += ["--proc", "/proc", "--dev", "/dev", *size, "--tmpfs", "/tmp", *size, "--tmpfs", "/dev/shm"]
        a += ["--bind", str(workdir), SANDBOX_WORKDIR, "--chdir", SANDBOX_WORKDIR]
        a += ["--remount-ro", "/"]  # the root tmpfs has no size cap: nothing may be written there
        for key, value in self._sandbox_env().items():
            a += ["--setenv", key, value]
        if seccomp_fd is not None:
            a += ["--seccomp", str(seccomp_fd)]
        if info_fd is not None:
            a += ["--info-fd", str(info_fd)]
        return [*a, "--"]

    def _limit_args(self, cgroup: Cgroup | None) -> list[str]:
        cfg = self.config
        prefix: list[str] = []
        if cgroup is not None:
            # join the cgroup before bwrap forks, so every sandbox process is accounted
            script = 'IFS=:; for f in $1; do echo $$ > "$f" || exit 125; done; shift; exec "$@"'
            prefix += ["/bin/sh", "-c", script, "sh", ":".join(cgroup.procs_files)]
        if self._prlimit is not None:
            prefix += [self._prlimit, f"--as={cfg.memory_mb << 20}", f"--cpu={cfg.cpu_s}",
                       f"--fsize={cfg.file_size_mb << 20}", f"--nofile={cfg.max_open_files}", "--core=0", "--"]  # fmt: skip
        return prefix

    def _preexec(self) -> None:
        """rlimits in the child when ``prlimit`` is missing (slower: forces fork over vfork)."""
        import resource

        cfg = self.config
        for res, value in ((resource.RLIMIT_AS, cfg.memory_mb << 20), (resource.RLIMIT_CPU, cfg.cpu_s),
                           (resource.RLIMIT_FSIZE, cfg.file_size_mb << 20),
                           (resource.RLIMIT_NOFILE, cfg.max_open_files), (resource.RLIMIT_CORE, 0)):  # fmt: skip
            resource.setrlimit(res, (value, value))

    # -- running ------------------------------------------------------------------------------

    def spawn(self, argv: Sequence[str], *, workdir: str | os.PathLike[str] | None = None,
              ro_binds: Sequence[tuple[str, str]] = (), pass_fds: Sequence[int] = (),
              stdin: int | None = subprocess.DEVNULL, stdout: int | None = subprocess.DEVNULL,
              stderr: int | None = subprocess.DEVNULL) -> SandboxProcess:  # fmt: skip
        """Start ``argv`` in a new sandbox and return the running process (persistent mode).

        Raises:
            SandboxUnavailable: isolation cannot be set up here (nothing was started).
        """
        self.require()
        owns = workdir is None
        wd = Path(tempfile.mkdtemp(prefix="reasonloop-sbx-", dir=self.config.work_root)) if owns else Path(workdir)  # type: ignore[arg-type]
        cgroup: Cgroup | None = None
        if self.config.cgroup and not self.config.unsafe_no_sandbox:
            cgroup, reason = Cgroup.create(
                memory_bytes=self.config.total_memory_mb << 20, max_pids=self.config.max_pids
            )
            if cgroup is None and reason not in self.notes:
                self.notes.append(f"cgroup limits skipped: {reason}")
        fds_to_close: list[int] = []
        try:
            if self.config.unsafe_no_sandbox:
                logger.warning("UNSAFE: running model-written code WITHOUT a sandbox (%s=1 or unsafe_no_sandbox=True)",
                               UNSAFE_ENV_VAR)  # fmt: skip
                cmd, env, info_r = [*self._limit_args(None), *argv], {**_HOST_ENV, **self._sandbox_env(),
                                                                      "HOME": str(wd)}, None  # fmt: skip
            else:
                seccomp_fd = self._seccomp_fd()
                if seccomp_fd is not None:
                    fds_to_close.append(seccomp_fd)
                info_r, info_w = os.pipe() if "--info-fd" in self._features else (None, None)
                if info_w is not None:
                    fds_to_close.append(info_w)
                cmd = [*self._limit_args(cgroup), *self._bwrap_args(wd, ro_binds, seccomp_fd, info_w), *argv]
                env = dict(_HOST_ENV)
            popen = subprocess.Popen(
                cmd,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                env=env,
                close_fds=True,
                pass_fds=(*fds_to_close, *pass_fds),
                start_new_session=True,
                cwd=str(wd) if self.config.unsafe_no_sandbox else "/",
                preexec_fn=self._preexec if self._prlimit is None else None,
            )
        except BaseException:
            if cgroup is not None:
                cgroup.remove()
            if owns:
                shutil.rmtree(wd, ignore_errors=True)
            raise
        finally:
            for fd in fds_to_close:
                os.close(fd)
        return SandboxProcess(popen, cgroup=cgroup, info_fd=info_r, workdir=wd, owns_workdir=owns)

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
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        except (SandboxUnavailable, OSError) as exc:
            return SandboxResult(status=SandboxStatus.REFUSED, killed_reason=str(exc), notes=list(self.notes))
        try:
            data = stdin.encode("utf-8", "surrogateescape") if isinstance(stdin, str) else (stdin or b"")
            out, err, timed_out = _communicate(proc.popen, data, start + limit, self.config.max_output_bytes)
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


def _communicate(
    popen: subprocess.Popen[bytes], data: bytes, deadline: float, cap: int
) -> tuple[tuple[bytes, bool], tuple[bytes, bool], bool]:
    """Feed stdin, read capped stdout/stderr until exit or ``deadline``; returns (out, err, timed_out)."""
    assert popen.stdin is not None and popen.stdout is not None and popen.stderr is not None
    out_fd, err_fd, wfd = popen.stdout.fileno(), popen.stderr.fileno(), popen.stdin.fileno()
    bufs = {out_fd: bytearray(), err_fd: bytearray()}
    over = dict.fromkeys(bufs, False)
    sel = selectors.DefaultSelector()
    for fd in bufs:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    view = memoryview(data)
    if view:
        os.set_blocking(wfd, False)
        sel.register(wfd, selectors.EVENT_WRITE)
    else:
        popen.stdin.close()
    open_reads, timed_out = 2, False
    while open_reads and not timed_out:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        for key, _ in sel.select(timeout=min(remaining, 0.5)):
            fd = key.fd
            if fd == wfd:
                try:
                    view = view[os.write(fd, view[: 1 << 16]) :]
                except BlockingIOError:
                    continue
                except BrokenPipeError:  # the program stopped reading: drop the rest
                    view = view[:0]
                if not view:
                    sel.unregister(fd)
                    popen.stdin.close()
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                sel.unregister(fd)
                open_reads -= 1
                continue
            room = cap - len(bufs[fd])
            bufs[fd] += chunk[: max(room, 0)]
            over[fd] = over[fd] or len(chunk) > room
    sel.close()
    if not timed_out:
        try:
            popen.wait(timeout=max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            timed_out = True
    return (bytes(bufs[out_fd]), over[out_fd]), (bytes(bufs[err_fd]), over[err_fd]), timed_out
