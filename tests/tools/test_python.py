"""The Python tool: sessions, forks, stateless mode, notebook display, tracebacks, packages."""

from __future__ import annotations

import asyncio
import logging

import pytest

from reasonloop.tools.base import Toolset
from reasonloop.tools.python import (
    CellStatus,
    PythonConfig,
    PythonSession,
    PythonSessionFactory,
    python_tool,
    run_python,
)
from reasonloop.tools.sandbox import SandboxConfig
from reasonloop.trajectory.schema import ToolCall, ToolStatus


def test_state_persists_within_a_session(session: PythonSession) -> None:
    assert session.run("import math\nx = 20\nopen('f.txt', 'w').write('kept')").status is CellStatus.OK
    result = session.run("x + 1, math.floor(2.5), open('f.txt').read()")
    assert result.display == "(21, 2, 'kept')"


def test_display_only_for_a_last_expression_that_is_not_none(session: PythonSession) -> None:
    assert session.run("y = 3").display is None
    assert session.run("None").display is None
    shown = session.run("print('out')\n[1, 2][0] * 7")
    assert (shown.stdout, shown.display) == ("out\n", "7")
    assert session.run("_ + 1").display == "8"


def test_traceback_is_trimmed_to_the_cell(session: PythonSession) -> None:
    session.run("def f(a):\n    return 1 / a")
    result = session.run("f(0)")
    assert result.status is CellStatus.ERROR and result.error_type == "ZeroDivisionError"
    assert result.traceback is not None and "_python_worker" not in result.traceback and "worker.py" not in result.traceback
    assert '<cell-' in result.traceback and "return 1 / a" in result.traceback
    syntax = session.run("def broken(:\n")
    assert syntax.error_type == "SyntaxError" and "worker" not in (syntax.traceback or "")


def test_stdout_stderr_and_subprocess_output_are_captured(session: PythonSession) -> None:
    result = session.run("import sys, subprocess\nprint('a')\nprint('b', file=sys.stderr)\nsubprocess.run(['echo', 'c'])\nNone")
    assert result.stdout == "a\nc\n" and result.stderr == "b\n"


def test_numpy_and_sympy_import(session: PythonSession) -> None:
    result = session.run("import numpy as np, sympy as sp\nx = sp.Symbol('x')\n(int(np.arange(5).sum()), str(sp.factor(x**2 - 1)))", timeout_s=30)
    assert result.display == "(10, '(x - 1)*(x + 1)')", result.format()


def test_packages_outside_the_configured_set_are_not_importable(sandbox_required: None) -> None:
    with PythonSession.open(PythonConfig(packages=("sympy",))) as s:
        assert s.run("import numpy").error_type == "ModuleNotFoundError"
        assert s.run("import sympy, mpmath\n'ok'").display == "'ok'"


def test_fork_copies_state_and_then_diverges(session: PythonSession) -> None:
    session.run("import random\nrandom.seed(7)\nx = [1]\nopen('f.txt', 'w').write('parent')")
    child = session.fork()
    try:
        assert child.run("random.random() == __import__('random').Random(7).random()").display == "True"
        child.run("x.append(2)\nopen('f.txt', 'w').write('child')\nz = 1")
        session.run("x.append(3)")
        assert session.run("x, open('f.txt').read(), 'z' in dir()").display == "([1, 3], 'parent', False)"
        assert child.run("x, open('f.txt').read()").display == "([1, 2], 'child')"
        # a timeout kills only the branch that timed out
        assert session.run("while True: pass", timeout_s=1).status is CellStatus.TIMEOUT
        assert child.run("x").display == "[1, 2]"
    finally:
        child.close()


def test_fork_copies_the_branch_directory_tree(session: PythonSession) -> None:
    setup = ("import os\nos.makedirs('d/e')\nopen('d/e/f.txt', 'w').write('deep')\nos.chmod('d/e/f.txt', 0o640)\n"
             "os.symlink('d/e/f.txt', 'link')\nos.mkfifo('pipe')\nos.utime('d/e/f.txt', (1, 2))")  # fmt: skip
    assert session.run(setup).status is CellStatus.OK
    with session.fork() as child:
        check = ("import os, stat\n[open('link').read(), os.readlink('link'), oct(os.stat('d/e/f.txt').st_mode & 0o777),"
                 " os.stat('d/e/f.txt').st_mtime, os.path.exists('pipe')]")  # fmt: skip
        assert child.run(check).display == "['deep', 'd/e/f.txt', '0o640', 2.0, False]"


def test_stateless_mode_forgets_between_calls(sandbox_required: None) -> None:
    assert run_python("x = 5\nx").display == "5"
    assert run_python("x").error_type == "NameError"
    tool = python_tool(PythonConfig(stateless=True))
    assert tool.sessions is None

    async def calls() -> list[str]:
        with Toolset([tool]).open("e") as tools:
            a = await tools.call(ToolCall(id="1", name="python", arguments={"code": "v = 1"}))
            b = await tools.call(ToolCall(id="2", name="python", arguments={"code": "v"}))
            return [a.status.value, b.status.value]

    assert asyncio.run(calls()) == ["ok", "error"]


def test_tool_in_a_toolset_forks_with_the_episode(sandbox_required: None) -> None:
    tool = python_tool(PythonConfig(timeout_s=5))
    assert isinstance(tool.sessions, PythonSessionFactory)
    assert tool.spec.parameters["required"] == ["code"]

    async def run() -> tuple[str, str, str]:
        with Toolset([tool]).open("ep") as tools:
            await tools.call(ToolCall(id="1", name="python", arguments={"code": "n = 1"}))
            with tools.fork("ep-branch") as branch:
                await branch.call(ToolCall(id="2", name="python", arguments={"code": "n = 100"}))
                forked = await branch.call(ToolCall(id="3", name="python", arguments={"code": "n"}))
            original = await tools.call(ToolCall(id="4", name="python", arguments={"code": "n"}))
            bad = await tools.call(ToolCall(id="5", name="python", arguments={"code": "1/0"}))
            assert bad.status is ToolStatus.ERROR and bad.error == "ZeroDivisionError: division by zero"
            return forked.output, original.output, bad.output

    forked, original, bad = asyncio.run(run())
    assert (forked, original) == ("Out: 100", "Out: 1")
    assert "ZeroDivisionError" in bad


def test_timeout_result_says_state_was_lost(session: PythonSession) -> None:
    session.run("kept = 1")
    result = session.run("import time\ntime.sleep(30)", timeout_s=0.5)
    assert result.status is CellStatus.TIMEOUT and result.state_lost
    tool_result = result.to_tool_result()
    assert tool_result.status is ToolStatus.TIMEOUT and "lost" in (tool_result.error or "")
    assert session.run("'kept' in dir()").display == "False"


def test_closed_session_refuses(session: PythonSession) -> None:
    session.close()
    assert session.run("1").status is CellStatus.REFUSED


def test_refuses_without_bubblewrap() -> None:
    config = PythonConfig(sandbox=SandboxConfig(bwrap="/nonexistent/bwrap"))
    result = run_python("print('must not run')", config)
    assert result.status is CellStatus.REFUSED
    assert "bubblewrap" in (result.message or "") and "apt-get install bubblewrap" in (result.message or "")
    assert result.to_tool_result().status is ToolStatus.REFUSED


def test_unsafe_opt_out_runs_and_warns(sandbox_required: None, caplog: pytest.LogCaptureFixture) -> None:
    config = PythonConfig(sandbox=SandboxConfig(unsafe_no_sandbox=True, bwrap="/nonexistent/bwrap"))
    with caplog.at_level(logging.WARNING, logger="reasonloop.tools.sandbox"):
        first = run_python("print(6 * 7)", config)
        second = run_python("print(1)", config)
    assert (first.stdout, second.stdout) == ("42\n", "1\n")
    assert sum("UNSAFE" in r.getMessage() for r in caplog.records) == 2


def test_invalid_config_is_rejected() -> None:
    from reasonloop.errors import ConfigError

    with pytest.raises(ConfigError):
        PythonConfig(timeout_s=0)
    with pytest.raises(ConfigError):
        PythonConfig(packages="numpy")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        PythonSession.open(PythonConfig(packages=("no-such-distribution-xyz",)))
