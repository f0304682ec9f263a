"""Host-side process plumbing for the sandbox: cgroups, process scans, safe file reads.

Everything here runs outside the sandbox and only reads kernel-provided files or files
the sandbox produced (the latter with ``O_NOFOLLOW`` and a size cap).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import shutil
import signal
import subprocess
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Cgroup",
    "SandboxProcess",
    "descendants",
    "host_pid_for_ns_pid",
    "kill_pids",
    "parent_pid",
    "read_capped",
    "safe_read_file",
    "wait_exit",
]

_CGROUP_ROOT = Path("/sys/fs/cgroup")
_COUNTER = itertools.count()


@dataclass(kw_only=True)
class Cgroup:
    """A per-sandbox cgroup (v1 ``memory`` + ``pids`` hierarchies, or v2) with limits.

    Create with :meth:`create`; ``None`` comes back with a reason where no cgroup is
    writable (e.g. an unprivileged container), and the sandbox then relies on rlimits.
    """

    dirs: list[Path] = field(default_factory=list)
    """The cgroup directories made for this sandbox (one per hierarchy)."""

    @classmethod
    def create(cls, *, memory_bytes: int, max_pids: int) -> tuple[Cgroup | None, str]:
        """Make a cgroup with the limits; returns ``(cgroup, "")`` or ``(None, reason)``."""
        name = f"reasonloop-{os.getpid()}-{next(_COUNTER)}-{time.monotonic_ns() % 10**9}"
        own = _own_cgroups()
        if "" in own and (_CGROUP_ROOT / "cgroup.controllers").exists():
            return cls._create_v2(_CGROUP_ROOT / own[""].lstrip("/") / name, memory_bytes, max_pids)
        if "memory" not in own or "pids" not in own:
            return None, "no cgroup v1 memory/pids hierarchy and no cgroup v2 at /sys/fs/cgroup"
        group = cls()
        try:
            mem = _CGROUP_ROOT / "memory" / own["memory"].lstrip("/") / name
            mem.mkdir()
            group.dirs.append(mem)
            (mem / "memory.limit_in_bytes").write_text(str(memory_bytes))
            with contextlib.suppress(OSError):  # absent without swap accounting
                (mem / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
            pids = _CGROUP_ROOT / "pids" / own["pids"].lstrip("/") / name
            pids.mkdir()
            group.dirs.append(pids)
            (pids / "pids.max").write_text(str(max_pids))
        except OSError as exc:
            group.remove()
            return None, f"cgroup v1 not writable ({exc.strerror or exc})"
        return group, ""

    @classmethod
    def _create_v2(cls, path: Path, memory_bytes: int, max_pids: int) -> tuple[Cgroup | None, str]:
        group = cls()
        try:
            path.mkdir()
            group.dirs.append(path)
            (path / "memory.max").write_text(str(memory_bytes))
            (path / "pids.max").write_text(str(max_pids))
        except OSError as exc:
            group.remove()
            return None, f"cgroup v2 not writable or controllers not delegated ({exc.strerror or exc})"
        return group, ""

    @property
    def procs_files(self) -> list[str]:
        """``cgroup.procs`` paths a new process writes its pid to, to join."""
        return [str(d / "cgroup.procs") for d in self.dirs]

    def add(self, pid: int) -> None:
        """Move process ``pid`` into this cgroup (its later children are born inside)."""
        for procs in self.procs_files:
            with open(procs, "w") as fh:
                fh.write(str(pid))

    def pids(self) -> set[int]:
        """Host pids of every process in the sandbox (zombies excluded by the kernel)."""
        try:
            text = (self.dirs[-1] / "cgroup.procs").read_text()
        except OSError:
            return set()
        return {int(x) for x in text.split()}

    def remove(self) -> None:
        """Delete the directories (retries briefly while the last processes exit)."""
        for d in reversed(self.dirs):
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.002)
        self.dirs.clear()


def _own_cgroups() -> dict[str, str]:
    """Controller -> this process's cgroup path (``""`` key for the v2 hierarchy)."""
    out: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for ctrl in parts[1].split(","):
            out[ctrl] = parts[2]
    return out


def _ppid_map() -> dict[int, int]:
    """pid -> parent pid for every process visible on the host."""
    out: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (ppid := _ppid_of(entry)) is not None:
            out[int(entry)] = ppid
    return out


def parent_pid(pid: int) -> int | None:
    """Parent pid of ``pid`` (``None`` when it is gone or a zombie)."""
    return _ppid_of(str(pid))


def _ppid_of(entry: str) -> int | None:
    try:
        with open(f"/proc/{entry}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # the command name may contain spaces and parentheses: parse after the last ')'
    rest = stat[stat.rfind(b")") + 2 :].split()
    return int(rest[1]) if len(rest) > 1 and rest[0] != b"Z" else None


def descendants(root: int) -> set[int]:
    """Live (non-zombie) descendants of ``root`` by a scan of /proc (fallback without a cgroup)."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _ppid_map().items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def host_pid_for_ns_pid(candidates: set[int], ns_pid: int) -> int | None:
    """The host pid among ``candidates`` whose innermost pid-namespace pid is ``ns_pid``."""
    for pid in candidates:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
                for line in fh:
                    if line.startswith("NSpid:"):
                        fields = line.split()
                        if len(fields) >= 2 and int(fields[-1]) == ns_pid:
                            return pid
                        break
        except (OSError, ValueError):
            continue
    return None


def kill_pids(pids: set[int]) -> None:
    """SIGKILL each pid, ignoring those already gone."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def wait_exit(popen: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for ``popen`` to exit and reap it; returns whether it did.

    Sleeps on a pidfd, which wakes the moment the process exits; ``Popen.wait(timeout)``
    polls with growing sleeps and returns up to several milliseconds late.
    """
    if popen.poll() is not None:
        return True
    try:
        pidfd = os.pidfd_open(popen.pid)
    except OSError:  # kernels before 5.3
        try:
            popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        select.select([pidfd], [], [], max(timeout_s, 0.0))
    finally:
        os.close(pidfd)
    return popen.poll() is not None


class SandboxProcess:
    """A running sandbox (persistent mode): kill it, list its processes, clean up."""

    def __init__(self, popen: subprocess.Popen[bytes], *, cgroup: Cgroup | None, init_pid: int | None,
                 workdir: Path, owns_workdir: bool) -> None:  # fmt: skip
        self.popen = popen
        self.cgroup = cgroup
        self.workdir = workdir
        self._owns_workdir = owns_workdir
        self._init_pid = init_pid
        # a session that is dropped without close() (or left open at exit) still releases
        # its processes, cgroup and work dir
        self._finalizer = weakref.finalize(self, _release, popen, cgroup, init_pid, workdir if owns_workdir else None)

    @property
    def pid(self) -> int:
        """Host pid of the outer ``bwrap`` process."""
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def init_pid(self) -> int | None:
        """Host pid of the sandbox's pid-namespace init (``bwrap``'s reaper); ``None`` without one."""
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
        _terminate(self.popen, self.cgroup, self._init_pid)

    def close(self) -> None:
        """Kill, then remove the cgroup and (if this process made it) the work dir."""
        self._finalizer.detach()
        self.kill()
        for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()
        if self.cgroup is not None:
            self.cgroup.remove()
        if self._owns_workdir:
            # Removing a directory tree can take milliseconds (ext4 mounted with `discard`),
            # and nothing can use this one again: the sandbox is gone and the name unique.
            # Not a daemon thread, so the interpreter waits for it at exit.
            threading.Thread(target=shutil.rmtree, args=(self.workdir,), kwargs={"ignore_errors": True},
                             name="reasonloop-sandbox-cleanup").start()  # fmt: skip


def _terminate(popen: subprocess.Popen[bytes], cgroup: Cgroup | None, init_pid: int | None) -> None:
    if popen.poll() is not None:
        return
    if init_pid is not None:
        # Killing the namespace's init makes the kernel kill every process in it, and
        # bwrap (its parent) reaps it, so nothing is orphaned to the host init. bwrap
        # exits only after all of them are gone.
        kill_pids({init_pid})
        if wait_exit(popen, 0.5):
            return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)
    if cgroup is not None:
        kill_pids(cgroup.pids())
    popen.wait()


def _release(popen: subprocess.Popen[bytes], cgroup: Cgroup | None, init_pid: int | None, workdir: Path | None) -> None:
    _terminate(popen, cgroup, init_pid)
    if cgroup is not None:
        cgroup.remove()
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)


def read_capped(fd: int, limit: int) -> tuple[bytes, bool]:
    """Read at most ``limit`` bytes from ``fd``; returns ``(data, truncated)``."""
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = os.read(fd, min(1 << 20, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    data = b"".join(chunks)
    return data[:limit], total > limit


def safe_read_file(root: str | os.PathLike[str], relpath: str, *, max_bytes: int = 1 << 20) -> tuple[bytes, bool]:
    """Read a file the sandbox produced without following links, with a size cap.

    Every path component is opened relative to the previous one with ``O_NOFOLLOW``,
    so a symlink planted inside the work dir cannot redirect the read to a host file.

    Raises:
        OSError: the path is missing, is or passes through a symlink, or is not a regular file.
        ValueError: ``relpath`` is absolute or climbs out with ``..``.
    """
    parts = [p for p in relpath.split("/") if p not in ("", ".")]
    if relpath.startswith("/") or ".." in parts or not parts:
        raise ValueError(f"path must be relative to the work dir without '..': {relpath!r}")
    flags_dir = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(root, flags_dir)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, flags_dir, dir_fd=fd)
            os.close(fd)
            fd = nxt
        leaf = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=fd)
    finally:
        os.close(fd)
    try:
        import stat

        if not stat.S_ISREG(os.fstat(leaf).st_mode):
            raise OSError(f"{relpath!r} is not a regular file")
        return read_capped(leaf, max_bytes)
    finally:
        os.close(leaf)
