"""A small seccomp-BPF deny list, assembled in pure Python for ``bwrap --seccomp FD``.

The filter allows everything except the system calls a sandboxed program never needs
and that widen the kernel attack surface or escape the namespaces: tracing, mounts,
namespace changes, eBPF, perf, keyrings, io_uring, kernel modules, clock setting,
``TIOCSTI`` (typing into the controlling terminal) and every socket family other than
``AF_UNIX`` (the network namespace already has no interfaces; this also keeps netlink
and raw sockets away from the kernel). Denied calls fail with ``EPERM`` (or
``EAFNOSUPPORT`` for sockets) rather than killing the process, so the program sees an
ordinary error it can report.

Program layout (struct sock_filter, native endian): check the architecture, load the
syscall number, compare it against the deny list, and branch to small argument checks
for ``socket``/``socketpair`` (domain), ``ioctl`` (request) and ``clone`` (namespace
flags). ``clone3`` gets ``ENOSYS`` because its flags live in memory a filter cannot
read; libc then falls back to ``clone``.
"""

from __future__ import annotations

import platform
import struct
from dataclasses import dataclass

__all__ = ["SeccompUnsupported", "build_filter", "supported_arch"]

_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06

_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000

_EPERM = 1
_ENOSYS = 38
_EAFNOSUPPORT = 97
_AF_UNIX = 1
_TIOCSTI = 0x5412
_TIOCLINUX = 0x541C
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME
_CLONE_NS_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x80

_OFF_NR = 0
_OFF_ARCH = 4
_OFF_ARG0 = 16
_OFF_ARG1 = 24

_DENIED = (
    "ptrace", "mount", "umount2", "unshare", "setns", "bpf", "perf_event_open", "keyctl", "add_key",
    "request_key", "io_uring_setup", "io_uring_enter", "io_uring_register", "init_module", "finit_module",
    "delete_module", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "pivot_root", "chroot",
    "swapon", "swapoff", "reboot", "sethostname", "setdomainname", "kexec_load", "kexec_file_load",
    "process_vm_readv", "process_vm_writev", "userfaultfd", "open_by_handle_at", "name_to_handle_at",
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr", "acct",
    "quotactl", "syslog", "kcmp", "fanotify_init", "lookup_dcookie", "iopl", "ioperm", "uselib",
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class _Arch:
    audit: int
    """AUDIT_ARCH_* value the kernel puts in seccomp_data.arch."""
    numbers: dict[str, int]
    """System call numbers for this architecture."""
    x32_bit: int | None = None
    """Syscall-number bit that selects the x32 ABI (denied wholesale), if any."""


_X86_64 = _Arch(
    audit=0xC000003E,
    x32_bit=0x40000000,
    numbers={
        "ptrace": 101, "mount": 165, "umount2": 166, "unshare": 272, "setns": 308, "bpf": 321,
        "perf_event_open": 298, "keyctl": 250, "add_key": 248, "request_key": 249, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "init_module": 175, "finit_module": 313,
        "delete_module": 176, "settimeofday": 164, "clock_settime": 227, "clock_adjtime": 305, "adjtimex": 159,
        "pivot_root": 155, "chroot": 161, "swapon": 167, "swapoff": 168, "reboot": 169, "sethostname": 170,
        "setdomainname": 171, "kexec_load": 246, "kexec_file_load": 320, "process_vm_readv": 310,
        "process_vm_writev": 311, "userfaultfd": 323, "open_by_handle_at": 304, "name_to_handle_at": 303,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "move_mount": 429, "open_tree": 428,
        "mount_setattr": 442, "acct": 163, "quotactl": 179, "syslog": 103, "kcmp": 312, "fanotify_init": 300,
        "lookup_dcookie": 212, "iopl": 172, "ioperm": 173, "uselib": 134,
        "socket": 41, "socketpair": 53, "ioctl": 16, "clone": 56, "clone3": 435,
    },
)  # fmt: skip

_AARCH64 = _Arch(
    audit=0xC00000B7,
    numbers={
        "ptrace": 117, "mount": 40, "umount2": 39, "unshare": 97, "setns": 268, "bpf": 280,
        "perf_event_open": 241, "keyctl": 219, "add_key": 217, "request_key": 218, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "init_module": 105, "finit_module": 273,
        "delete_module": 106, "settimeofday": 170, "clock_settime": 112, "clock_adjtime": 266, "adjtimex": 171,
        "pivot_root": 41, "chroot": 51, "swapon": 224, "swapoff": 225, "reboot": 142, "sethostname": 161,
        "setdomainname": 162, "kexec_load": 104, "kexec_file_load": 294, "process_vm_readv": 270,
        "process_vm_writev": 271, "userfaultfd": 282, "open_by_handle_at": 265, "name_to_handle_at": 264,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "move_mount": 429, "open_tree": 428,
        "mount_setattr": 442, "acct": 89, "quotactl": 60, "syslog": 116, "kcmp": 272, "fanotify_init": 262,
        "lookup_dcookie": 18,
        "socket": 198, "socketpair": 199, "ioctl": 29, "clone": 220, "clone3": 435,
    },
)  # fmt: skip

_ARCHES = {"x86_64": _X86_64, "amd64": _X86_64, "aarch64": _AARCH64, "arm64": _AARCH64}


class SeccompUnsupported(RuntimeError):
    """No filter is available for this machine's architecture."""


def supported_arch(machine: str | None = None) -> bool:
    """Whether :func:`build_filter` knows the syscall table of ``machine``."""
    return (machine or platform.machine()).lower() in _ARCHES


class _Asm:
    """Tiny assembler: instructions with symbolic jump targets resolved at the end."""

    def __init__(self) -> None:
        self.code: list[tuple[int, str | int, str | int, int]] = []
        self.labels: dict[str, int] = {}

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def emit(self, code: int, k: int, jt: str | int = 0, jf: str | int = 0) -> None:
        self.code.append((code, jt, jf, k))

    def assemble(self) -> bytes:
        out = bytearray()
        for pc, (code, jt, jf, k) in enumerate(self.code):
            out += struct.pack("=HBBI", code, self._offset(pc, jt), self._offset(pc, jf), k)
        return bytes(out)

    def _offset(self, pc: int, target: str | int) -> int:
        if isinstance(target, int):
            return target
        off = self.labels[target] - pc - 1
        if not 0 <= off < 256:
            raise ValueError(f"seccomp jump to {target} out of range ({off})")
        return off


def build_filter(machine: str | None = None) -> bytes:
    """Return the deny-list filter as raw ``struct sock_filter`` bytes for ``bwrap --seccomp``.

    Args:
        machine: ``platform.machine()`` value; defaults to this machine.

    Raises:
        SeccompUnsupported: the architecture has no syscall table here.
    """
    arch = _ARCHES.get((machine or platform.machine()).lower())
    if arch is None:
        raise SeccompUnsupported(f"no seccomp syscall table for architecture {machine or platform.machine()!r}")
    nr = arch.numbers
    a = _Asm()
    a.emit(_LD_W_ABS, _OFF_ARCH)
    a.emit(_JEQ_K, arch.audit, jt=1, jf=0)
    a.emit(_RET_K, _RET_KILL_PROCESS)
    a.emit(_LD_W_ABS, _OFF_NR)
    if arch.x32_bit is not None:
        a.emit(_JGE_K, arch.x32_bit, jt="eperm", jf=0)
    for name in _DENIED:
        if name in nr:
            a.emit(_JEQ_K, nr[name], jt="eperm")
    a.emit(_JEQ_K, nr["socket"], jt="socket")
    a.emit(_JEQ_K, nr["socketpair"], jt="socket")
    a.emit(_JEQ_K, nr["ioctl"], jt="ioctl")
    a.emit(_JEQ_K, nr["clone"], jt="clone")
    a.emit(_JEQ_K, nr["clone3"], jt="enosys")
    a.emit(_RET_K, _RET_ALLOW)
    a.label("socket")
    a.emit(_LD_W_ABS, _OFF_ARG0)
    a.emit(_JEQ_K, _AF_UNIX, jt="allow", jf="eafnosupport")
    a.label("ioctl")
    a.emit(_LD_W_ABS, _OFF_ARG1)
    a.emit(_JEQ_K, _TIOCSTI, jt="eperm")
    a.emit(_JEQ_K, _TIOCLINUX, jt="eperm", jf="allow")
    a.label("clone")
    a.emit(_LD_W_ABS, _OFF_ARG0)
    a.emit(_JSET_K, _CLONE_NS_FLAGS, jt="eperm", jf="allow")
    a.label("allow")
    a.emit(_RET_K, _RET_ALLOW)
    a.label("eperm")
    a.emit(_RET_K, _RET_ERRNO | _EPERM)
    a.label("eafnosupport")
    a.emit(_RET_K, _RET_ERRNO | _EAFNOSUPPORT)
    a.label("enosys")
    a.emit(_RET_K, _RET_ERRNO | _ENOSYS)
    return a.assemble()
