"""Hostile inputs for the Python tool: 0 escapes, every call within its timeout + 1 s,
no process outliving a call, and the session usable (or restarted) afterwards."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reasonloop.tools.base import Toolset
from reasonloop.tools.python import CellResult, CellStatus, PythonConfig, PythonSession, python_tool
from reasonloop.tools.sandbox import read_output_file
from reasonloop.trajectory.schema import ToolCall, ToolStatus

CANARY = "reasonloop-canary-7f3a9c"
REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 2.0

Check = Callable[[CellResult], bool]


def _run(session: PythonSession, procs, code: str, timeout: float = TIMEOUT) -> CellResult:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    result = session.run(code, timeout_s=timeout)
    elapsed = time.monotonic() - start
    assert elapsed <= timeout + 1.0, f"call took {elapsed:.2f} s (timeout {timeout} s)"
    assert not procs.strays(session), "a process outlived the call"
    assert CANARY not in result.format()
    return result


def _failed_with(*names: str) -> Check:
    return lambda r: r.status is CellStatus.ERROR and r.error_type in names


def _shows(text: str) -> Check:
    return lambda r: r.status is CellStatus.OK and text in r.format()


def _ok_no_canary(r: CellResult) -> bool:
    return r.status is CellStatus.OK and "LEAK" not in r.format()


def _ended(r: CellResult) -> bool:
    return r.status in (CellStatus.TIMEOUT, CellStatus.CRASHED, CellStatus.ERROR)


CASES: dict[str, tuple[str, Check]] = {
    # time
    "infinite_loop": ("while True:\n    pass", lambda r: r.status is CellStatus.TIMEOUT and r.state_lost),
    "sleep": ("import time\ntime.sleep(100)", lambda r: r.status is CellStatus.TIMEOUT),
    "ignore_signals_loop": (
        "import signal\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):\n    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass",
        lambda r: r.status is CellStatus.TIMEOUT,
    ),
    "huge_pow": ("10 ** (10 ** 10)", _ended),
    # memory
    "alloc_10gb": ("b = bytearray(10 * 2**30)", _failed_with("MemoryError")),
    "numpy_10gb": ("import numpy as np\na = np.ones(10 * 2**30 // 8)", _failed_with("MemoryError", "_ArrayMemoryError")),
    "grow_until_limit": ("xs = []\nwhile True:\n    xs.append(bytearray(50 * 2**20))", lambda r: _ended(r) and r.status is not CellStatus.OK),
    # processes
    "fork_bomb": (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        _ended,
    ),
    "subprocess_outlives_call": ("import subprocess\np = subprocess.Popen(['sleep', '1000'])\np.pid > 0", _shows("True")),
    "daemon_double_fork": (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(1000)\n    os._exit(0)\n'spawned'",
        _shows("spawned"),
    ),
    "orphan_ignoring_sigterm": (
        "import os, signal, time\nif os.fork() == 0:\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n    time.sleep(1000)\n'child'",
        _shows("child"),
    ),
    "kill_everything": ("import os, signal\nos.kill(-1, signal.SIGKILL)", lambda r: r.state_lost and "stopped" in (r.message or "")),
    "exit_interpreter": ("import os\nos._exit(3)", lambda r: r.status is CellStatus.CRASHED and r.state_lost),
    "sys_exit": ("import sys\nsys.exit(4)", _failed_with("SystemExit")),
    # output floods
    "stdout_100mb_print": ("for _ in range(100):\n    print('x' * 2**20)", lambda r: r.status is CellStatus.OK and r.stdout_truncated and len(r.stdout) <= 2**20),
    "stderr_flood": ("import sys\nfor _ in range(50):\n    sys.stderr.write('e' * 2**20)", lambda r: r.stderr_truncated and len(r.stderr) <= 2**20),
    "fd_level_flood": ("import os\nfor _ in range(100):\n    os.write(1, b'y' * 2**20)", lambda r: r.stdout_truncated and len(r.stdout) <= 2**20),
    "subprocess_yes_flood": ("import subprocess\nsubprocess.run(['yes'])", lambda r: r.stdout_truncated and len(r.stdout) <= 2**20),
    "huge_display": ("'z' * 10**8", lambda r: r.status is CellStatus.OK and r.stdout_truncated and len(r.display or '') <= 2**20),
    # secrets
    "env_canary": ("import os\n'LEAK' if any('canary' in v for v in os.environ.values()) else sorted(os.environ)", _ok_no_canary),
    "proc1_environ": ("open('/proc/1/environ', 'rb').read()", lambda r: r.status is CellStatus.ERROR or (r.status is CellStatus.OK and "canary" not in r.format())),
    "all_proc_environ": (
        "import glob\nout = []\nfor p in glob.glob('/proc/*/environ'):\n    try:\n        out.append(open(p, 'rb').read())\n    except OSError:\n        pass\n'LEAK' if any(b'canary' in x for x in out) else len(out)",
        _ok_no_canary,
    ),
    "project_files": (f"import os\nos.path.exists({str(REPO / 'pyproject.toml')!r}) or os.path.exists({str(REPO / 'reasonloop')!r})", _shows("False")),
    "ssh_keys": ("import os\nos.listdir(os.path.expanduser('/root/.ssh'))", _failed_with("FileNotFoundError", "PermissionError")),
    "root_home": ("import os\nos.listdir('/root')", lambda r: r.status is CellStatus.ERROR or ".ssh" not in r.format()),
    "etc_shadow": ("open('/etc/shadow').read()", _failed_with("FileNotFoundError", "PermissionError")),
    "sys_absent": ("import os\nos.listdir('/sys')", _failed_with("FileNotFoundError")),
    # filesystem writes
    "write_usr": ("open('/usr/pwned', 'w').write('x')", _failed_with("OSError", "PermissionError")),
    "write_repo": (f"open({str(REPO / 'PWNED')!r}, 'w').write('x')", _failed_with("FileNotFoundError", "OSError", "PermissionError")),
    "write_etc": ("open('/etc/pwned', 'w').write('x')", _failed_with("OSError", "PermissionError", "FileNotFoundError")),
    "write_root_fs": ("open('/pwned', 'w').write('x')", _failed_with("OSError", "PermissionError")),
    "work_root_is_shared_scratch_only": ("open('/work/ok.txt', 'w').write('x')", _shows("1")),
    "tmp_is_capped": ("with open('/tmp/big', 'wb') as f:\n    for _ in range(200):\n        f.write(b'0' * 2**20)", _failed_with("OSError")),
    "dev_shm_is_capped": ("with open('/dev/shm/big', 'wb') as f:\n    for _ in range(200):\n        f.write(b'0' * 2**20)", _failed_with("OSError")),
    # kernel surface
    "ptrace_unshare_mount": (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n[libc.unshare(0x10000000), libc.ptrace(16, 1, 0, 0), libc.mount(b'x', b'/tmp', b'tmpfs', 0, None)]",
        _shows("[-1, -1, -1]"),
    ),
    "netlink_raw_socket": ("import socket\nsocket.socket(socket.AF_NETLINK, socket.SOCK_RAW)", _failed_with("OSError")),
    "af_unix_ok": ("import socket\na, b = socket.socketpair()\na.sendall(b'hi')\nb.recv(2)", _shows("b'hi'")),
    "dns": ("import socket\nsocket.getaddrinfo('example.com', 80)", _failed_with("gaierror", "OSError")),
    # garbage input
    "nul_byte": ("x = 1\x00\n", _failed_with("SyntaxError", "ValueError")),
    "lone_surrogate": ("print('\udcff')\nx = '\ud800'", lambda r: r.status in (CellStatus.OK, CellStatus.ERROR)),
    "binary_garbage": (bytes(range(256)).decode("latin-1") * 4, _failed_with("SyntaxError", "ValueError")),
    "deep_nesting": ("(" * 10_000 + ")" * 10_000, _failed_with("SyntaxError", "RecursionError", "MemoryError")),
    "recursion": ("def f(n):\n    return f(n + 1)\nf(0)", _failed_with("RecursionError")),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_case(name: str, session: PythonSession, procs) -> None:  # type: ignore[no-untyped-def]
    code, check = CASES[name]
    result = _run(session, procs, code)
    assert check(result), f"{name}: {result.status} {result.format()[:500]}"
    members = procs.members(session)
    # the session works again afterwards (restarted if the case killed it)
    after = _run(session, procs, "40 + 2")
    assert after.status is CellStatus.OK and after.display == "42", after.format()[:500]
    session.close()
    assert not procs.alive(members), "processes survived closing the session"
    assert not (REPO / "PWNED").exists()


def test_network_cannot_reach_host_listener(session: PythonSession, procs) -> None:  # type: ignore[no-untyped-def]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        result = _run(session, procs, f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)")
        assert result.status is CellStatus.ERROR and result.error_type in ("OSError", "ConnectionRefusedError", "TimeoutError")
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()


def test_symlink_planted_in_workdir_is_not_followed(session: PythonSession, procs) -> None:  # type: ignore[no-untyped-def]
    result = _run(session, procs, "import os\nos.symlink('/etc/hostname', 'link')\nopen('plain', 'w').write('data')\nos.getcwd()")
    assert result.status is CellStatus.OK
    family = session._family
    assert family is not None
    branch = Path(result.display.strip("'")).name  # type: ignore[union-attr]
    assert read_output_file(family.proc.workdir, f"{branch}/plain") == (b"data", False)
    with pytest.raises(OSError):
        read_output_file(family.proc.workdir, f"{branch}/link")
    with pytest.raises(ValueError):
        read_output_file(family.proc.workdir, "../etc/passwd")


def test_huge_code_is_rejected_without_running(session: PythonSession) -> None:
    result = session.run("x = 1\n" * 100_000)
    assert result.status is CellStatus.INVALID and "limit" in (result.message or "")
    assert not session.started


def test_episodes_do_not_share_state(sandbox_required: None) -> None:
    tool = python_tool(PythonConfig(timeout_s=3))
    toolset = Toolset([tool])

    async def episode(tag: str, code: str) -> str:
        with toolset.open(tag) as tools:
            result = await tools.call(ToolCall(id="1", name="python", arguments={"code": code}))
            assert result.status is ToolStatus.OK, result
            return result.output

    first = asyncio.run(episode("A", "secret_var = 'from-A'\nopen('a.txt', 'w').write('A')\nimport os\nos.getcwd()"))
    assert "/work/" in first
    second = asyncio.run(episode("B", "import os, glob\n['secret_var' in dir(), glob.glob('/work/**/a.txt', recursive=True)]"))
    assert second == "Out: [False, []]"


@pytest.mark.slow
def test_thousand_consecutive_calls(session: PythonSession, procs) -> None:  # type: ignore[no-untyped-def]
    failures = 0
    for i in range(1000):
        result = session.run(f"x = {i}\nx * 2")
        failures += result.status is not CellStatus.OK or result.display != str(i * 2)
    assert failures == 0
    assert not procs.strays(session)
    family = session._family
    assert family is not None and not procs.zombies_of(family.proc.init_pid() or -1)


def test_no_zombies_left_on_the_host(sandbox_required: None, procs) -> None:  # type: ignore[no-untyped-def]
    before = procs.zombies_of(os.getpid())
    for _ in range(3):
        with PythonSession.open(PythonConfig(timeout_s=1)) as s:
            s.run("import subprocess\nsubprocess.Popen(['sleep', '100'])")
            s.run("while True: pass", timeout_s=0.5)
    assert procs.zombies_of(os.getpid()) <= before
