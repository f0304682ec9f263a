"""The sandbox runner: isolation, limits, deadlines, output caps, fail-closed behaviour."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reasonloop.errors import ConfigError
from reasonloop.tools._sandbox_launch import AS_PID_1, bwrap_args
from reasonloop.tools._sandbox_proc import descendants
from reasonloop.tools._sandbox_seccomp import SeccompUnsupported, build_filter
from reasonloop.tools.sandbox import Sandbox, SandboxConfig, SandboxStatus, SandboxUnavailable

PY = os.path.realpath(sys.executable)
PREFIX = str(Path(PY).parent.parent)
ZOMBIE_CHECK = Path(__file__).with_name("zombie_check.py")


@pytest.fixture
def sandbox(sandbox_required: None) -> Sandbox:
    return Sandbox(SandboxConfig(timeout_s=5, ro_binds=((PREFIX, PREFIX),)))


def _py(code: str) -> list[str]:
    return [PY, "-I", "-S", "-c", code]


def test_runs_and_passes_stdin(sandbox: Sandbox) -> None:
    result = sandbox.run(_py("import sys, os; print(sys.stdin.read().upper(), os.getcwd(), os.uname().nodename)"), stdin="hi")
    assert result.status is SandboxStatus.OK and result.stdout == "HI /work sandbox\n"


def test_environment_is_scrubbed(sandbox: Sandbox, canary_env: str) -> None:
    result = sandbox.run(_py("import os; print(sorted(os.environ)); print(open('/proc/1/environ').read())"))
    assert result.status is SandboxStatus.OK and canary_env not in result.stdout
    assert "REASONLOOP_TEST_SECRET" not in result.stdout


def test_timeout_kills_the_whole_tree(sandbox: Sandbox) -> None:
    start = time.monotonic()
    result = sandbox.run(_py("import subprocess; subprocess.Popen(['sleep', '100']); import time; time.sleep(100)"), timeout_s=1)
    assert result.status is SandboxStatus.TIMEOUT and time.monotonic() - start < 2.0
    assert "wall-clock" in (result.killed_reason or "")


def test_output_is_capped(sandbox_required: None) -> None:
    sb = Sandbox(SandboxConfig(max_output_bytes=1000, ro_binds=((PREFIX, PREFIX),)))
    result = sb.run(_py("import sys; sys.stdout.write('x' * 10**6); sys.stderr.write('e' * 10)"))
    assert result.stdout_truncated and len(result.stdout) == 1000
    assert not result.stderr_truncated and result.stderr == "e" * 10


def test_nonzero_exit_and_limits(sandbox: Sandbox) -> None:
    assert sandbox.run(_py("raise SystemExit(3)")).exit_code == 3
    memory = sandbox.run(_py("b = bytearray(10 * 2**30)"))
    assert memory.status is SandboxStatus.ERROR and "MemoryError" in memory.stderr


def test_network_and_namespaces_are_denied(sandbox: Sandbox) -> None:
    code = "import socket, ctypes\ntry:\n    socket.socket(socket.AF_INET)\nexcept OSError as e:\n    print(e.errno)\nprint(ctypes.CDLL(None).unshare(0x10000000))"
    assert sandbox.run(_py(code)).stdout == "97\n-1\n"


def test_writes_only_in_the_work_dir(sandbox: Sandbox, tmp_path: Path) -> None:
    code = "open('/work/out.txt', 'w').write('ok')\ntry:\n    open('/usr/x', 'w')\nexcept OSError as e:\n    print(type(e).__name__)"
    result = sandbox.run(_py(code), workdir=tmp_path)
    assert result.stdout == "OSError\n" and (tmp_path / "out.txt").read_text() == "ok"


def test_missing_bubblewrap_fails_closed() -> None:
    sb = Sandbox(SandboxConfig(bwrap="/nonexistent/bwrap"))
    assert "bubblewrap" in (sb.unavailable_reason() or "")
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        sb.require()
    result = sb.run(["/bin/true"])
    assert result.status is SandboxStatus.REFUSED and result.exit_code is None


def test_config_checks() -> None:
    with pytest.raises(ConfigError):
        SandboxConfig(timeout_s=0)
    with pytest.raises(ConfigError):
        SandboxConfig(max_open_files=4)
    with pytest.raises(ConfigError):
        SandboxConfig(ro_binds=(("/usr", "relative"),))


def test_seccomp_program_shape() -> None:
    program = build_filter("x86_64")
    assert len(program) % 8 == 0 and 60 < len(program) // 8 < 256
    first = struct.unpack("=HBBI", program[:8])
    assert first == (0x20, 0, 0, 4)  # load the architecture first
    assert build_filter("aarch64") != program
    with pytest.raises(SeccompUnsupported):
        build_filter("sparc")


def test_rlimits_are_hard_and_cannot_be_raised_inside(sandbox_required: None) -> None:
    sb = Sandbox(SandboxConfig(max_open_files=100, memory_mb=1500, ro_binds=((PREFIX, PREFIX),)))
    code = ("import resource as r\n"
            "print(r.getrlimit(r.RLIMIT_NOFILE), r.getrlimit(r.RLIMIT_AS)[1] >> 20, r.getrlimit(r.RLIMIT_CORE))\n"
            "try:\n    r.setrlimit(r.RLIMIT_NOFILE, (512, 512))\nexcept (ValueError, OSError) as e:\n"
            "    print(type(e).__name__)")  # fmt: skip
    result = sb.run(_py(code))
    assert result.stdout == "(100, 100) 1500 (0, 0)\nValueError\n", result


def test_every_sandbox_process_is_in_its_cgroup(sandbox: Sandbox, procs) -> None:  # type: ignore[no-untyped-def]
    proc = sandbox.spawn(_py("import subprocess, time\nsubprocess.Popen(['sleep', '30'])\ntime.sleep(30)"))
    try:
        if proc.cgroup is None:
            pytest.skip(f"no writable cgroup here: {sandbox.notes}")
        deadline = time.monotonic() + 10
        while len(descendants(proc.pid)) < 3 and time.monotonic() < deadline:  # init, python, sleep
            time.sleep(0.01)
        inside = descendants(proc.pid)
        assert len(inside) >= 3 and proc.init_pid() in inside
        assert inside | {proc.pid} <= proc.members()
    finally:
        proc.close()
    assert not procs.alive(inside)


def test_a_sandbox_that_fails_to_set_up_runs_nothing_and_says_why(sandbox: Sandbox) -> None:
    result = sandbox.run(_py("print('ran')"), ro_binds=(("/nonexistent-reasonloop-path", "/x"),))
    assert result.status in (SandboxStatus.ERROR, SandboxStatus.REFUSED) and "ran" not in result.stdout
    assert "nonexistent-reasonloop-path" in result.stderr + (result.killed_reason or "")


def test_one_shot_runs_leave_nothing_to_reap(sandbox_required: None) -> None:
    # in a subreaper (see zombie_check.py), so an orphan lands on the check whatever the host's init does
    proc = subprocess.run([sys.executable, str(ZOMBIE_CHECK)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    if "skip" in report:
        pytest.skip(f"sandbox unavailable: {report['skip']}")
    statuses = report["statuses"]
    assert {k: statuses[k] for k in ("ok", "error", "timeout", "not_executable")} == {
        "ok": ["ok"] * 3, "error": ["error"] * 3, "timeout": ["timeout"] * 3, "not_executable": ["error"] * 3,
    }, report
    # bwrap may fail before or after it reports its child (see the set-up failure test above)
    assert len(statuses["setup_failure"]) == 3 and set(statuses["setup_failure"]) <= {"error", "refused"}, report
    assert report["left"] == [], report


def test_a_run_is_the_sandbox_init_where_bwrap_allows(sandbox: Sandbox, tmp_path: Path) -> None:
    pid = sandbox.run(_py("import os; print(os.getpid())")).stdout
    # older bwrap: the run stays under bwrap's reaper (pid 1) and the probe says so in the notes
    assert pid == ("2\n" if any(AS_PID_1 in note for note in sandbox.notes) else "1\n")
    # a persistent sandbox keeps the reaper
    proc = sandbox.spawn(_py("import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(30)"), stdout=subprocess.PIPE)
    try:
        assert proc.popen.stdout is not None and proc.popen.stdout.readline() == b"2\n"
    finally:
        proc.close()

    def args(features: set[str], as_pid_1: bool) -> list[str]:
        return bwrap_args(sandbox.config, features, workdir=tmp_path, ro_binds=(), env={}, fds={}, as_pid_1=as_pid_1)

    assert AS_PID_1 in args({AS_PID_1}, True)
    assert AS_PID_1 not in args(set(), True) and AS_PID_1 not in args({AS_PID_1}, False)
