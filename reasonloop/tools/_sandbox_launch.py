"""Starting a sandbox: the ``bwrap`` command line and the hand-over of limits from outside.

A sandbox starts as ``bwrap --info-fd W --block-fd R ... -- argv`` with no wrapper
process in front. ``bwrap`` clones its sandbox child, writes the child's host pid to
``W``, and the child stops, after setting up its mounts and before it forks (with
``--as-pid-1``: execs) the command, until a byte arrives on ``R``. Meanwhile the host
moves ``bwrap`` and the child into the sandbox's cgroup and sets the rlimits of the
child with ``prlimit(2)``; the command and everything it starts inherit both. This
replaces a ``sh`` (to join the cgroup) plus a ``prlimit`` exec chain in front of
``bwrap``, about 3 ms of every sandbox's start.

The rlimits are set as hard limits from the initial user namespace: raising a hard limit
needs ``CAP_SYS_RESOURCE`` there, which nothing in the sandbox has. The child is checked
to be ``bwrap``'s own child through a pidfd held across the writes, so a pid that is
reused meanwhile can never receive the limits or the cgroup.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from reasonloop.tools._sandbox_proc import Cgroup, parent_pid

if TYPE_CHECKING:
    from reasonloop.tools.sandbox import SandboxConfig

__all__ = [
    "AS_PID_1",
    "LAUNCH_FLAGS",
    "SANDBOX_WORKDIR",
    "bwrap_args",
    "hand_over",
    "lib_links",
    "prlimit_prefix",
    "rlimits",
    "set_rlimits",
]

SANDBOX_WORKDIR = "/work"
"""Where the per-session work dir appears inside the sandbox."""
LAUNCH_FLAGS = ("--info-fd", "--block-fd")
"""``bwrap`` options the hand-over needs (every release since 0.1.3 has them)."""
AS_PID_1 = "--as-pid-1"
"""``bwrap`` option that runs the command as the sandbox's pid 1 (see :func:`bwrap_args`)."""


def rlimits(config: SandboxConfig) -> list[tuple[int, int]]:
    """``(resource, limit)`` pairs every sandbox process gets as soft and hard limit."""
    return [
        (resource.RLIMIT_AS, config.memory_mb << 20),
        (resource.RLIMIT_CPU, config.cpu_s),
        (resource.RLIMIT_FSIZE, config.file_size_mb << 20),
        (resource.RLIMIT_NOFILE, config.max_open_files),
        (resource.RLIMIT_CORE, 0),
    ]


def set_rlimits(config: SandboxConfig) -> None:
    """Apply :func:`rlimits` to this process (a ``preexec_fn`` where ``prlimit`` is missing)."""
    for res, value in rlimits(config):
        resource.setrlimit(res, (value, value))


def prlimit_prefix(config: SandboxConfig, prlimit: str) -> list[str]:
    """The ``prlimit`` command that applies :func:`rlimits` before exec'ing what follows."""
    return [prlimit, f"--as={config.memory_mb << 20}", f"--cpu={config.cpu_s}", f"--fsize={config.file_size_mb << 20}",
            f"--nofile={config.max_open_files}", "--core=0", "--"]  # fmt: skip


def lib_links() -> list[str]:
    """Mount options recreating the host's ``/bin``, ``/lib``... (symlinks into ``/usr`` or dirs)."""
    args: list[str] = []
    for name in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{name}"]
    return args


def bwrap_args(config: SandboxConfig, features: set[str], *, workdir: Path, ro_binds: Sequence[tuple[str, str]],
               env: dict[str, str], fds: dict[str, int], as_pid_1: bool = False) -> list[str]:  # fmt: skip
    """The ``bwrap`` command line up to and including ``--``.

    Args:
        config: Limits and mounts.
        features: Optional ``bwrap`` flags this version supports.
        workdir: Host directory mounted writable at ``/work``.
        ro_binds: Extra read-only mounts of this sandbox.
        env: Environment inside.
        fds: ``{"--seccomp": fd, "--info-fd": fd, "--block-fd": fd}`` (any subset).
        as_pid_1: Run the command as the pid namespace's init (``--as-pid-1``, where
            ``features`` has it) instead of under ``bwrap``'s reaper. ``bwrap`` then
            reaps the command itself before it exits; its reaper, by contrast, reports
            the command's exit and ``bwrap`` exits without reaping it, which leaves the
            reaper a zombie of the host's pid 1.
    """
    a = [config.bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--clearenv",
         "--cap-drop", "ALL", "--uid", str(config.uid), "--gid", str(config.uid), "--hostname", config.hostname]  # fmt: skip
    if "--disable-userns" in features:
        a.append("--disable-userns")
    if as_pid_1 and AS_PID_1 in features:
        a.append(AS_PID_1)
    a += ["--ro-bind", "/usr", "/usr", *lib_links()]
    for etc in ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives"):
        a += ["--ro-bind-try", etc, etc]
    for host, inside in (*config.ro_binds, *ro_binds):
        a += ["--ro-bind", str(host), str(inside)]
    size = ["--size", str(config.tmp_size_mb << 20)] if "--size" in features else []
    a += ["--proc", "/proc", "--dev", "/dev", *size, "--tmpfs", "/tmp", *size, "--tmpfs", "/dev/shm"]
    a += ["--bind", str(workdir), SANDBOX_WORKDIR, "--chdir", SANDBOX_WORKDIR]
    a += ["--remount-ro", "/"]  # the root tmpfs has no size cap: nothing may be written there
    for key, value in env.items():
        a += ["--setenv", key, value]
    for flag, fd in fds.items():
        a += [flag, str(fd)]
    return [*a, "--"]


def hand_over(popen: subprocess.Popen[bytes], info_r: int, block_w: int, *, cgroup: Cgroup | None,
              limits: Sequence[tuple[int, int]], timeout_s: float) -> int:  # fmt: skip
    """Put ``bwrap``'s waiting child under the cgroup and rlimits, then let it run.

    A child that died during its setup (a missing mount source, say) runs nothing; it is
    let go unlimited and ``bwrap``'s exit status and stderr say what failed.

    Returns:
        The host pid of the sandbox's init process (``bwrap``'s child).

    Raises:
        OSError: ``bwrap`` did not report a child, or a live child could not be limited
            (it is killed first: closing the block fd without a byte would release it).
    """
    child = _child_pid(info_r, time.monotonic() + timeout_s)
    try:
        pidfd = os.pidfd_open(child)
    except ProcessLookupError:
        return child  # already gone and reaped
    try:
        # pidfd_open came first: while the process behind it has not exited, the pid is
        # bwrap's child and every write below reaches it
        if parent_pid(child) != popen.pid:
            if _exited(pidfd):
                return child
            raise OSError("the sandbox process lost its parent during setup")
        try:
            if cgroup is not None:
                cgroup.add(popen.pid)
                cgroup.add(child)
            for res, value in limits:
                resource.prlimit(child, res, (value, value))
        except OSError:
            if _exited(pidfd):
                return child
            raise
    except BaseException:
        with contextlib.suppress(OSError):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        raise
    finally:
        os.close(pidfd)
    with contextlib.suppress(BrokenPipeError):
        os.write(block_w, b"g")
    return child


def _exited(pidfd: int) -> bool:
    return bool(select.select([pidfd], [], [], 0)[0])


def _child_pid(info_r: int, deadline: float) -> int:
    """Read ``{"child-pid": N}`` that ``bwrap`` writes to its info fd (then closes it)."""
    data = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([info_r], [], [], remaining)[0]:
            raise OSError("bubblewrap did not report its sandbox process in time")
        chunk = os.read(info_r, 4096)
        if not chunk:
            break
        data += chunk
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return int(json.loads(data.decode())["child-pid"])
    raise OSError("bubblewrap failed before starting the sandbox")
