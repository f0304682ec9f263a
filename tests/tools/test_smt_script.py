"""The SMT-LIB reader/validator and the limited process runner behind the Z3 checker."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from reasonloop.tools._smt_replies import SentCommand, read_replies
from reasonloop.tools._smt_run import Limits, find_z3_binary, run_limited
from reasonloop.tools._smt_script import ScriptError, parse_script, parse_sexprs, position, render, tokenize


def _script(text: str) -> list[str]:
    return [c.name for c in parse_script(text, max_chars=10_000, max_depth=50).commands]


def test_tokenizer_reads_strings_quoted_symbols_and_comments_like_z3() -> None:
    # z3 escapes '"' by doubling it; a backslash is an ordinary character and cannot escape
    with pytest.raises(ScriptError, match="unexpected character"):
        tokenize('(echo "a\\"b\\")')
    tokens = tokenize('(echo "a"" ; (include x)") ; (include "y")\n(|a b| x)')
    kinds = [(t.kind, t.value) for t in tokens]
    assert kinds[:4] == [("(", "("), ("atom", "echo"), ("string", '"a"" ; (include x)"'), (")", ")")]
    assert kinds[4:] == [("(", "("), ("qsym", "a b"), ("atom", "x"), (")", ")")]


def test_render_and_position() -> None:
    text = '(assert\n  (= |a b| (f  1 "s")))'
    (node,) = parse_sexprs(text, tokenize(text), max_depth=10)
    assert render(node) == '(assert (= |a b| (f 1 "s")))'
    assert position(text, text.index("(=")) == (2, 2)


def test_allowed_scripts_list_their_commands() -> None:
    assert _script("(set-logic QF_LIA)(set-option :produce-models true)(declare-const x Int)(assert (> x 1))(check-sat)(exit)") == [
        "set-logic", "set-option", "declare-const", "assert", "check-sat", "exit",
    ]  # fmt: skip
    assert _script("(set-option :smt.arith.solver 2)(set-option :random-seed 7)(check-sat)")[-1] == "check-sat"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('(set-option |:regular-output-channel| "f")(check-sat)', "output-channel"),
        ("(set-option :Regular-Output-Channel x)(check-sat)", "output-channel"),
        ('(check-sat) ; (include "/etc/passwd")', "reads no files"),
        ("(set-option :dump_models true)(check-sat)", "not allowed"),
        ("(set-option :sat.drat.file x)(check-sat)", "not allowed"),
        ("(set-option :parallel.enable true)(check-sat)", "not allowed"),
        ("(set-option :verbose 10)(check-sat)", "not allowed"),
        ("(set-option)(check-sat)", "needs a keyword"),
        ("(display x)(check-sat)", "unsupported command"),
        ("(declare-const x Int)", "nothing to check"),
        ("((check-sat))", "expected a command"),
        ("#| block |#\n(check-sat)", "expected a command"),
        ("(check-sat)(exit)(exit)", "(exit) may only be the last"),
        ("(assert " + "(not " * 60 + "true" + ")" * 61, "nesting deeper than 50"),
    ],
)
def test_refused_scripts(text: str, words: str) -> None:
    with pytest.raises(ScriptError, match=None) as info:
        _script(text)
    assert words in str(info.value)


def test_replies_are_matched_to_commands_and_errors_of_added_queries_are_ignored() -> None:
    text = "(check-sat)\n(get-value (x))\n(assert oops)\n(get-info :reason-unknown)\n(get-model)\n"
    sent = [
        SentCommand("check-sat", 0, "user"),
        SentCommand("get-value", 12, "user"),
        SentCommand("assert", 27, "user"),
        SentCommand("get-info", 41, "info"),
        SentCommand("get-model", 68, "info"),
    ]
    stdout = 'unsat\n(error "line 2 column 1: no model")\n(error "line 3 column 8: unknown constant oops")\n'
    stdout += '(:reason-unknown "")\n(error "line 5 column 0: model is not available")\n'
    replies = read_replies(text, sent, stdout)
    assert replies.verdicts == ["unsat"]
    assert replies.errors == ["line 2 column 1: no model", "line 3 column 8: unknown constant oops"]
    assert replies.reason_unknown == "" and replies.model is None


def test_truncated_reply_keeps_complete_answers() -> None:
    sent = [SentCommand("check-sat", 0, "user"), SentCommand("get-model", 12, "info")]
    replies = read_replies("(check-sat)\n(get-model)\n", sent, "sat\n(\n  (define-fun x () Int\n    4", partial=True)
    assert replies.verdicts == ["sat"] and replies.model is None and replies.unreadable is None


def test_z3_binary_is_found_in_the_wheel() -> None:
    path = find_z3_binary()
    assert path is not None and os.access(path, os.X_OK)


def test_runner_kills_the_whole_group_at_the_deadline() -> None:
    out = run_limited(
        ["/bin/sh", "-c", "sleep 37.125 & echo started; sleep 37.125"],
        stdin=b"",
        limits=Limits(wall_s=0.5, cpu_s=2, address_space_mb=256),
    )
    assert out.timed_out and out.stdout == b"started\n" and out.returncode == -9
    # SIGKILL is delivered asynchronously: give the background child a moment to die
    for _ in range(100):
        if not any(p.name.isdigit() and _is_sleep_child(p) for p in Path("/proc").iterdir()):
            break
        time.sleep(0.02)
    else:
        pytest.fail("a process of the killed group survived")


def _is_sleep_child(proc: Path) -> bool:
    try:
        return (proc / "cmdline").read_bytes() == b"sleep\x0037.125\x00"
    except OSError:
        return False


def test_runner_caps_output_limits_memory_and_files_and_reports_start_errors(tmp_path: Path) -> None:
    limits = Limits(wall_s=5, cpu_s=5, address_space_mb=256, max_output_bytes=1000)
    flood = run_limited([sys.executable, "-I", "-c", "while True: print('x' * 100)"], stdin=b"", limits=limits)
    assert flood.output_truncated and len(flood.stdout) == 1000
    big = run_limited([sys.executable, "-I", "-c", "x = bytearray(1 << 30)"], stdin=b"", limits=limits)
    assert big.returncode == 1 and b"MemoryError" in big.stderr
    target = tmp_path / "f"
    run_limited([sys.executable, "-I", "-B", "-c", f"open({str(target)!r}, 'w').write('x')"], stdin=b"", limits=limits)
    assert not target.exists() or target.stat().st_size == 0  # RLIMIT_FSIZE=0: not one byte lands
    echo = run_limited(["/bin/cat"], stdin=b"hello", limits=limits)
    assert (echo.returncode, echo.stdout) == (0, b"hello")
    missing = run_limited([str(tmp_path / "nope")], stdin=b"", limits=limits)
    assert missing.returncode is None and missing.start_error is not None


def test_sandbox_runner_checks_smtlib_and_z3py_inside_bubblewrap() -> None:
    from reasonloop.tools._smt_sandbox import sandbox_runner
    from reasonloop.tools.sandbox import Sandbox
    from reasonloop.tools.smt import Verdict, check_smt, check_z3py

    reason = Sandbox().unavailable_reason()
    if reason is not None:
        pytest.skip(f"no sandbox here: {reason}")
    runner = sandbox_runner()
    assert check_smt("(declare-const x Int) (assert (= x 3)) (check-sat)", runner=runner).model == {"x": "3"}
    program = "from z3 import *\nsolver = Solver()\nsolver.add(Int('y') == 2)\n"
    assert check_z3py(program, runner=runner).verdict is Verdict.SAT
    assert check_smt("(assert (> x 1)) (check-sat)", runner=runner).verdict is Verdict.ERROR
