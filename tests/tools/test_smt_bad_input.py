"""Bad and hostile input to the Z3 checker: always a typed result, never a crash, never a false ``sat``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reasonloop.tools.smt import SmtConfig, SmtResult, Verdict, check_smt, check_z3py

FAST = SmtConfig(timeout_s=1.0, wall_slack_s=1.5, memory_mb=128)

# (id, input, reason, words the message must contain)
SMTLIB_CASES: list[tuple[str, str | bytes, str, str]] = [
    ("empty", "", "input", "empty"),
    ("whitespace", " \n\t \r\n ", "input", "empty"),
    ("comment only", "; (assert false)\n", "input", "nothing to check"),
    ("garbage bytes", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "input", "not valid UTF-8"),
    ("invalid utf-8", b"(declare-const x Int)\n(assert (> x \xff))\n(check-sat)", "input", "not valid UTF-8"),
    ("lone surrogate", "(assert \ud800)", "input", "not valid Unicode"),
    ("nul byte", "(declare-const x Int)\x00(check-sat)", "input", "U+0000"),
    ("prose", "The answer is sat.", "input", "expected a command"),
    ("bare verdict", "sat", "input", "expected a command"),
    ("unbalanced open", "(declare-const x Int)\n(assert (> x 3)\n(check-sat)\n", "input", "never closed"),
    ("unbalanced close", "(declare-const x Int))\n(check-sat)", "input", "line 1 column 21: unbalanced ')'"),
    ("unterminated string", '(assert (= s "abc))\n(check-sat)', "input", "unterminated string"),
    ("stray backslash", "(assert \\x)\n(check-sat)", "input", "unexpected character"),
    ("unknown command", "(frobnicate)\n(check-sat)", "input", "unknown or unsupported command"),
    ("unknown sort", "(declare-const x Foo)\n(assert (> x 3))\n(check-sat)", "z3", "unknown sort 'Foo'"),
    (
        "undeclared symbol",
        "(declare-const x Int)\n(assert (> y 3))\n(check-sat)",
        "z3",
        "line 2 column 11: unknown constant y",
    ),
    ("non-boolean assert", "(declare-const x Int)\n(assert (+ x 1))\n(check-sat)", "z3", "line 2"),
    ("include passwd", '(include "/etc/passwd")\n(check-sat)', "input", "reads no files"),
    ("include quoted", '(|include| "/etc/passwd")\n(check-sat)', "input", "reads no files"),
    ("echo forged sat", '(echo "sat")', "input", "echo"),
    ("diagnostic channel", '(set-option :diagnostic-output-channel "/tmp/x")\n(check-sat)', "input", "output-channel"),
    ("trace file", "(set-option :trace true)\n(check-sat)", "input", "not allowed"),
    ("trace file name", '(set-option :trace_file_name "/tmp/t.log")\n(check-sat)', "input", "not allowed"),
    ("compliant mode", "(set-option :smtlib2_compliant true)\n(check-sat)", "input", "not allowed"),
    ("print success", "(set-option :print-success true)\n(check-sat)", "input", "not allowed"),
    ("option string value", '(set-option :smt.string_solver "seq")\n(check-sat)', "input", "not allowed"),
    ("option writes a file", "(set-option :smt.cancel_backup_file backup)\n(check-sat)", "input", "not allowed"),
    ("option prints lemmas", "(set-option :sat.lemmas2console true)\n(check-sat)", "input", "not allowed"),
    ("tactic parameters", '(check-sat-using (using-params sat :drat.file "x"))', "input", "tactic parameters"),
    ("option path value", "(set-option :opt.solution_prefix /tmp/sol)\n(check-sat)", "input", "not allowed"),
    ("exit before check", "(assert false)\n(exit)\n(check-sat)", "input", "(exit) may only be the last"),
    ("proof not enabled", "(assert false)\n(check-sat)\n(get-proof)", "z3", "proof"),
    (
        "deep nesting",
        "(assert " + "(not " * 100_000 + "true" + ")" * 100_001 + "\n(check-sat)",
        "input",
        "nesting deeper",
    ),
    ("very long input", "(assert true)" + " " * 1_000_000 + "(check-sat)", "input", "too long"),
]


@pytest.mark.parametrize(("text", "reason", "words"), [c[1:] for c in SMTLIB_CASES], ids=[c[0] for c in SMTLIB_CASES])
def test_bad_smtlib_is_an_error_with_a_clear_message(text: str | bytes, reason: str, words: str) -> None:
    result = check_smt(text, config=FAST)
    assert isinstance(result, SmtResult)
    assert result.verdict is Verdict.ERROR, result
    assert result.reason == reason
    assert result.message is not None and words in result.message
    assert result.to_text().startswith(f"{reason} error: ")


def test_bad_input_suite_is_large_enough() -> None:
    assert len(SMTLIB_CASES) + len(Z3PY_CASES) >= 12


def test_regular_output_channel_cannot_create_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "pwned.txt"
    for option in (":regular-output-channel", ":REGULAR-OUTPUT-CHANNEL", ":regular_output_channel"):
        script = f'(set-option {option} "{target}")\n(set-option {option} "pwned.txt")\n(check-sat)'
        result = check_smt(script, config=FAST)
        assert (result.verdict, result.reason) == (Verdict.ERROR, "input")
    assert list(tmp_path.iterdir()) == []


def test_huge_numeral_is_stopped_by_the_wall_clock_limit() -> None:
    config = SmtConfig(timeout_s=0.5, wall_slack_s=1.0, max_input_chars=4_000_000)
    result = check_smt("(declare-const x Int)\n(assert (> x " + "9" * 3_000_000 + "))\n(check-sat)", config=config)
    assert (result.verdict, result.reason) == (Verdict.UNKNOWN, "timeout")
    assert result.duration_s < config.wall_s + 2.0  # the deadline covers parsing, with slack for a slow machine


def _children_named(name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if comm == name and int(rest[1]) == os.getpid():
            found.append(int(entry.name))
    return found


def test_no_solver_process_survives_a_timeout() -> None:
    result = check_smt(
        "(declare-const x Int) (declare-const y Int) (declare-const z Int)"
        "(assert (and (> x 0) (> y 0) (> z 0) (= (+ (* x x x) (* y y y)) (* z z z)))) (check-sat)",
        config=SmtConfig(timeout_s=0.3),
    )
    assert result.verdict is Verdict.UNKNOWN
    assert _children_named("z3") == []


Z3PY_CASES: list[tuple[str, str | bytes, str]] = [
    ("empty program", "   \n", "empty"),
    ("syntax error", "from z3 import *\nsolver = Solver(\n", "line 2"),
    ("no solver", "from z3 import *\nx = Int('x')\n", "variable named `solver`"),
    ("not a solver", "solver = 'sat'\n", "variable named `solver`"),
    ("exception", "from z3 import *\nsolver = Solver()\nsolver.add(1 / 0 == 1)\n", "ZeroDivisionError"),
    ("invalid utf-8", b"solver = '\xff'\n", "not valid UTF-8"),
    ("infinite loop", "while True:\n    pass\n", "did not reach solver.check()"),
    ("memory hog", "hog = bytearray(1 << 34)\n", "MemoryError"),
    ("os.system", "import os\nos.system('touch /tmp/reasonloop-smt-pwned')\n", "os.system is not allowed"),
    ("subprocess", "import subprocess\nsubprocess.run(['id'])\n", "subprocess.Popen is not allowed"),
    ("fork", "import os\nos.fork()\n", "os.fork is not allowed"),
    ("read secrets", "print(open('/proc/1/environ').read())\n", "reading '/proc/1/environ' is not allowed"),
    ("socket", "import socket\nsocket.create_connection(('127.0.0.1', 22))\n", "socket"),
    ("thread", "import threading\nthreading.Thread(target=print).start()\n", "threads are not allowed"),
    ("load libc", "import ctypes\nctypes.CDLL('libc.so.6')\n", "ctypes.dlopen is not allowed"),
    ("kill parent", "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n", "os.kill is not allowed"),
]


@pytest.mark.parametrize(("program", "words"), [c[1:] for c in Z3PY_CASES], ids=[c[0] for c in Z3PY_CASES])
def test_bad_z3py_program_is_an_error(program: str | bytes, words: str) -> None:
    result = check_z3py(program, config=FAST)
    assert result.verdict is Verdict.ERROR, result
    assert result.message is not None and words in result.message, result.message


def test_z3py_program_cannot_write_files(tmp_path: Path) -> None:
    target = tmp_path / "pwned.txt"
    for program in (
        f"import os\nopen({str(target)!r}, 'w').write('x')\n",
        f"import os\nos.close(os.open({str(target)!r}, os.O_CREAT | os.O_WRONLY))\n",
        "open('relative.txt', 'w').write('x')\n",
    ):
        result = check_z3py(program, config=FAST)
        assert result.verdict is Verdict.ERROR and "not allowed" in (result.message or "")
    assert not target.exists()
    assert not Path("/tmp/reasonloop-smt-pwned").exists()
