"""Z3 checker: SMT-LIB 2 text (data, preferred) or z3py programs (code) -> a typed verdict.

    >>> check_smt("(declare-const x Int) (assert (> x 2)) (check-sat)").verdict
    <Verdict.SAT: 'sat'>

SMT-LIB runs in the ``z3`` binary of the ``z3-solver`` wheel, in a child process with
rlimits, a soft solver timeout (``-t:``), a hard one (``-T:``) and a wall-clock
SIGKILL that also covers parsing (a huge numeral can take longer to read than any
solver timeout). The script is validated first (see :mod:`._smt_script`): file
access, output redirection and ``echo`` are refused, and empty or garbage input is an
error, never ``sat`` (z3 itself answers ``sat`` to an empty script). A z3py program
runs in a fresh ``python -I`` child (fresh z3 context) under the same limits; only
JSON comes back. The process runner is a parameter, so the sandbox runner can take
the place of the local one.
"""

from __future__ import annotations

import json
import math
import signal
import sys
from dataclasses import replace

from reasonloop.tools._smt_py import CHILD_SOURCE, RESULT_MARKER, STAGE_MARKER
from reasonloop.tools._smt_replies import Replies, SentCommand, read_replies
from reasonloop.tools._smt_run import ProcessRunner, RunOutcome, find_z3_binary, run_limited
from reasonloop.tools._smt_script import CHECK_COMMANDS, Script, ScriptError, parse_script
from reasonloop.tools._smt_types import (
    Z3_MEMOUT_EXIT,
    SmtConfig,
    SmtResult,
    Verdict,
    error_result,
    signal_name,
    unknown_kind,
)
from reasonloop.tools.base import Tool, tool
from reasonloop.trajectory.schema import Reward, ToolResult, ToolStatus

__all__ = [
    "ProcessRunner",
    "SmtConfig",
    "SmtResult",
    "Verdict",
    "check_smt",
    "check_z3py",
    "smt_reward",
    "smt_tool",
]


_Z3_BASE_MB = 64
"""Address space the z3 binary needs before solving anything (about 45 MiB measured)."""
_PYTHON_BASE_MB = 512
"""Address space of a Python interpreter with z3 imported, and headroom."""


def _decode(text: str | bytes) -> str | SmtResult:
    if isinstance(text, bytes):
        try:
            return text.decode("utf-8")
        except UnicodeDecodeError as exc:
            return error_result("input", f"input is not valid UTF-8 (bad byte at offset {exc.start})")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return error_result("input", f"input is not valid Unicode text (lone surrogate at offset {exc.start})")
    return text


def _prepare(script: Script) -> tuple[str, list[SentCommand]]:
    """The text sent to z3: the user's (unchanged, minus a final exit) plus trailing queries."""
    commands = script.commands
    text = script.text
    if commands and commands[-1].name == "exit":
        text, commands = text[: commands[-1].node.start], commands[:-1]
    sent = [SentCommand(c.name, c.node.start, "user") for c in commands]
    suffix: list[tuple[str, str, str]] = []
    if not script.has(*CHECK_COMMANDS):
        suffix.append(("check-sat", "(check-sat)", "check"))
    suffix.append(("get-info", "(get-info :reason-unknown)", "info"))
    if not script.has("get-model"):
        suffix.append(("get-model", "(get-model)", "info"))
    for name, command, role in suffix:
        text += "\n"
        sent.append(SentCommand(name, len(text), role))
        text += command
    return text + "\n", sent


def _process_failure(run: RunOutcome, replies: Replies, wall_s: float) -> SmtResult | None:
    if run.start_error is not None:
        return error_result("setup", f"could not start z3: {run.start_error}")
    if run.timed_out or replies.hard_timeout:
        return SmtResult(
            verdict=Verdict.UNKNOWN, reason="timeout", message=f"no answer within the {wall_s:g} s wall-clock limit"
        )
    if replies.out_of_memory or run.returncode == Z3_MEMOUT_EXIT or b"out of memory" in run.stderr:
        return SmtResult(verdict=Verdict.UNKNOWN, reason="memout", message="z3 ran out of memory")
    code = run.returncode or 0
    if code == -signal.SIGXCPU:
        return SmtResult(verdict=Verdict.UNKNOWN, reason="timeout", message="CPU time limit reached")
    if code == -signal.SIGXFSZ:
        return error_result("crash", "z3 was stopped because the script tried to write a file")
    if code < 0:
        return error_result("crash", f"z3 was killed by {signal_name(code)}")
    return None


def _script_errors(errors: list[str], verdicts: list[Verdict]) -> list[str]:
    """The script's errors, less z3's "model is not available" after an unsat or unknown answer.

    Most scripts end with ``(get-model)``; when the last check is not sat, z3 refuses
    it, and that refusal is the answer (no model exists), not a mistake in the input.
    """
    if verdicts and verdicts[-1] is not Verdict.SAT:
        return [e for e in errors if not e.endswith("model is not available")]
    return errors


def _interpret(run: RunOutcome, replies: Replies, config: SmtConfig, checks: int) -> SmtResult:
    verdicts = [Verdict(v) for v in replies.verdicts if v in ("sat", "unsat", "unknown")]
    common = {"verdicts": verdicts, "truncated": run.output_truncated}
    failure = _process_failure(run, replies, config.wall_s)
    if failure is not None:
        return failure.model_copy(update=common)
    if replies.unreadable is not None:
        return error_result("z3", replies.unreadable, **common)
    errors = _script_errors(replies.errors, verdicts)
    if errors:
        shown = "; ".join(errors[:5]) + (f" (+{len(errors) - 5} more)" if len(errors) > 5 else "")
        return error_result("z3", shown, errors=errors[:50], **common)
    if not verdicts:
        tail = run.stderr.decode("utf-8", errors="replace").strip()[-300:]
        return error_result("z3", f"z3 gave no answer (exit status {run.returncode}) {tail}".strip(), **common)
    if len(verdicts) != checks:
        # z3 read the script differently from the validator: trust neither answer
        message = f"z3 answered {len(verdicts)} of the script's {checks} checks"
        return error_result(
            "z3", message + (" (its output was cut at the size limit)" if run.output_truncated else ""), **common
        )
    verdict = verdicts[-1]
    result = SmtResult(verdict=verdict, values=replies.values, unsat_core=replies.core, **common)  # type: ignore[arg-type]
    if verdict is Verdict.SAT:
        result.model = replies.user_model if replies.user_model is not None else (replies.model or {})
    elif verdict is Verdict.UNKNOWN:
        result.reason = unknown_kind(replies.reason_unknown)
        result.message = replies.reason_unknown if replies.reason_unknown not in (None, "", result.reason) else None
    return result


def _finish(result: SmtResult, expect: Verdict | str | None, duration_s: float, **update: object) -> SmtResult:
    expected = Verdict(expect) if expect is not None else None
    return result.model_copy(
        update={
            **update,
            "duration_s": duration_s,
            "expected": expected,
            "matches": None if expected is None else result.verdict is expected,
        }
    )


def _config(config: SmtConfig | None, timeout_s: float | None) -> SmtConfig:
    config = config or SmtConfig()
    return replace(config, timeout_s=timeout_s) if timeout_s is not None else config


def check_smt(
    text: str | bytes,
    *,
    timeout_s: float | None = None,
    expect: Verdict | str | None = None,
    config: SmtConfig | None = None,
    runner: ProcessRunner = run_limited,
) -> SmtResult:
    """Check an SMT-LIB 2 script with z3 and return a typed verdict (never raises on bad input).

    Args:
        text: The script (UTF-8 text or bytes).
        timeout_s: Solver time per query (overrides ``config.timeout_s``).
        expect: The verdict the caller expects; sets ``expected`` and ``matches``.
        config: Limits; defaults to :class:`SmtConfig`.
        runner: Runs the z3 process under limits (local rlimits by default).

    Raises:
        ValueError: if ``expect`` or ``timeout_s`` is not valid (misuse, not bad input).
    """
    config = _config(config, timeout_s)
    expected = Verdict(expect) if expect is not None else None
    decoded = _decode(text)
    if isinstance(decoded, SmtResult):
        return _finish(decoded, expected, 0.0)
    try:
        script = parse_script(decoded, max_chars=config.max_input_chars, max_depth=config.max_depth)
    except ScriptError as exc:
        return _finish(error_result("input", str(exc)), expected, 0.0)
    binary = find_z3_binary()
    if binary is None:
        return _finish(error_result("setup", "the z3 binary was not found: pip install z3-solver"), expected, 0.0)
    sent_text, sent = _prepare(script)
    argv = [binary, "-smt2", "-in", f"-t:{int(config.timeout_s * 1000)}",
            f"-T:{math.ceil(config.wall_s)}"]  # fmt: skip
    # memory is bounded by RLIMIT_AS (z3 then stops with "out of memory", as with its own
    # -memory flag, which slows solving down by tracking every allocation)
    run = runner(argv, stdin=sent_text.encode("utf-8"), limits=config.limits(extra_mb=_Z3_BASE_MB))
    stdout = run.stdout.decode("utf-8", errors="replace")
    replies = read_replies(sent_text, sent, stdout, partial=run.output_truncated)
    checks = sum(1 for c in sent if c.name in CHECK_COMMANDS and c.role != "info")
    return _finish(_interpret(run, replies, config, checks), expected, run.duration_s)


def _z3py_result(run: RunOutcome, config: SmtConfig) -> SmtResult:
    stdout = run.stdout.decode("utf-8", errors="replace")
    if RESULT_MARKER not in stdout:
        if run.start_error is not None:
            return error_result("setup", f"could not start python: {run.start_error}")
        if run.timed_out and STAGE_MARKER.encode() in run.stderr:
            return SmtResult(verdict=Verdict.UNKNOWN, reason="timeout", message=f"no answer within {config.wall_s:g} s")
        if run.timed_out or run.returncode == -signal.SIGXCPU:
            return error_result("program", f"the program did not reach solver.check() within {config.wall_s:g} s")
        tail = run.stderr.decode("utf-8", errors="replace")[-500:]
        code = run.returncode or 0
        how = f"was killed by {signal_name(code)}" if code < 0 else f"exited with status {code}"
        return error_result("program", f"the program {how} before reporting a result {tail}".strip())

    try:
        payload = json.loads(stdout.rsplit(RESULT_MARKER, 1)[1].splitlines()[0])
        output = str(payload.get("output", ""))
        if payload.get("status") != "checked":
            return error_result("program", str(payload.get("message", "the program failed")), program_output=output)
        verdict = Verdict(payload["verdict"])
        result = SmtResult(verdict=verdict, verdicts=[verdict], program_output=output, language="z3py")
        if verdict is Verdict.SAT:
            result.model = {str(k): str(v) for k, v in dict(payload.get("model") or {}).items()}
        elif verdict is Verdict.UNSAT and payload.get("core") is not None:
            result.unsat_core = [str(c) for c in payload["core"]]
        elif verdict is Verdict.UNKNOWN:
            result.reason = unknown_kind(payload.get("reason"))
            result.message = payload.get("reason") if payload.get("reason") not in (None, "", result.reason) else None
        return result
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        return error_result("program", f"the program's result could not be read ({type(exc).__name__})")


def check_z3py(
    program: str | bytes,
    *,
    timeout_s: float | None = None,
    expect: Verdict | str | None = None,
    config: SmtConfig | None = None,
    runner: ProcessRunner = run_limited,
) -> SmtResult:
    """Run a z3py program in a child Python and check the solver it leaves in ``solver``.

    The program must bind a ``z3.Solver`` or ``z3.Optimize`` to the name ``solver``;
    the child calls ``solver.check()`` with the time limit and reports verdict, model,
    unsat core (from ``assert_and_track``) or the reason for ``unknown``.
    Arguments as in :func:`check_smt`.
    """
    config = _config(config, timeout_s)
    expected = Verdict(expect) if expect is not None else None
    decoded = _decode(program)
    if isinstance(decoded, SmtResult):
        return _finish(decoded, expected, 0.0, language="z3py")
    if not decoded.strip():
        return _finish(error_result("input", "the program is empty"), expected, 0.0, language="z3py")
    if len(decoded) > config.max_input_chars:
        message = f"the program is too long ({len(decoded):,} characters; the limit is {config.max_input_chars:,})"
        return _finish(error_result("input", message), expected, 0.0, language="z3py")
    source = CHILD_SOURCE % {
        "result": RESULT_MARKER, "stage": STAGE_MARKER, "timeout_ms": int(config.timeout_s * 1000),
        "max_out": 4000,
    }  # fmt: skip
    argv = [sys.executable, "-I", "-B", "-c", source]
    run = runner(argv, stdin=decoded.encode("utf-8"), limits=config.limits(extra_mb=_PYTHON_BASE_MB))
    return _finish(_z3py_result(run, config), expected, run.duration_s, language="z3py")


def smt_reward(
    text: str | bytes,
    *,
    expect: Verdict | str,
    timeout_s: float | None = None,
    config: SmtConfig | None = None,
    runner: ProcessRunner = run_limited,
) -> Reward:
    """1.0 when z3's verdict on ``text`` equals ``expect``, else 0.0, with the reason."""
    result = check_smt(text, timeout_s=timeout_s, expect=expect, config=config, runner=runner)
    detail = f" ({result.reason}: {result.message})" if result.reason else ""
    return Reward(
        name="smt",
        value=1.0 if result.matches else 0.0,
        source="z3",
        explanation=f"expected {result.expected}, z3 said {result.verdict.value}{detail}",
    )


def _tool_result(result: SmtResult) -> ToolResult:
    status = ToolStatus.ERROR if result.verdict is Verdict.ERROR else ToolStatus.OK
    text = result.to_text()
    return ToolResult(
        status=status,
        output="" if status is ToolStatus.ERROR else text,
        error=text if status is ToolStatus.ERROR else None,
        duration_s=result.duration_s,
        data=result.model_dump(mode="json"),
    )


def smt_tool(
    *,
    timeout_s: float = 5.0,
    memory_mb: int = 1024,
    allow_z3py: bool = False,
    name: str = "z3",
    sandbox: bool = False,
    config: SmtConfig | None = None,
    runner: ProcessRunner = run_limited,
) -> Tool:
    """The ``z3`` tool: check SMT-LIB 2 (and, with ``allow_z3py``, z3py programs).

    Args:
        timeout_s: Solver time per query.
        memory_mb: Solver memory.
        allow_z3py: Also accept z3py programs (code runs in a child Python; off by default).
        name: Tool name.
        sandbox: Run z3 in the bubblewrap sandbox (:mod:`reasonloop.tools.sandbox`) instead
            of a plain limited child process.
        config: Full limits (``timeout_s`` and ``memory_mb`` override its fields).
        runner: Process runner, when neither the local one nor the sandbox fits.
    """
    cfg = replace(config or SmtConfig(), timeout_s=timeout_s, memory_mb=memory_mb)
    if sandbox:
        from reasonloop.tools._smt_sandbox import sandbox_runner

        runner = sandbox_runner()
    tool_timeout = cfg.wall_s + 10.0

    if not allow_z3py:

        def z3(smtlib: str) -> ToolResult:
            """Check SMT-LIB 2 constraints with the Z3 solver: sat (with a model), unsat (with the unsat core of named assertions) or unknown.

            Args:
                smtlib: An SMT-LIB 2 script: declarations, (assert ...) commands and (check-sat). Name assertions with (! F :named a1) and set :produce-unsat-cores to get a core.
            """
            return _tool_result(check_smt(smtlib, config=cfg, runner=runner))

        return tool(z3, name=name, timeout_s=tool_timeout)

    def z3_with_code(smtlib: str = "", z3py: str = "") -> ToolResult:
        """Check constraints with the Z3 solver: sat (with a model), unsat (with an unsat core) or unknown.

        Args:
            smtlib: An SMT-LIB 2 script with (assert ...) and (check-sat) (preferred).
            z3py: Instead of smtlib: a Python program using z3 that leaves its Solver in a variable named `solver`.
        """
        if bool(smtlib.strip()) == bool(z3py.strip()):
            return ToolResult(status=ToolStatus.INVALID_ARGUMENTS, error="give exactly one of `smtlib` or `z3py`")
        if smtlib.strip():
            return _tool_result(check_smt(smtlib, config=cfg, runner=runner))
        return _tool_result(check_z3py(z3py, config=cfg, runner=runner))

    return tool(z3_with_code, name=name, timeout_s=tool_timeout)
