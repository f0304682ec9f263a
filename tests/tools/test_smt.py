"""The Z3 checker on well-formed input: verdicts, models, cores, unknowns, the tool, the reward."""

from __future__ import annotations

import asyncio
import json

import pytest

from reasonloop.tools.smt import SmtConfig, Verdict, check_smt, check_z3py, smt_reward, smt_tool
from reasonloop.trajectory.schema import ToolStatus

CUBES = """
(declare-const x Int) (declare-const y Int) (declare-const z Int)
(assert (and (> x 0) (> y 0) (> z 0) (= (+ (* x x x) (* y y y)) (* z z z))))
(check-sat)
"""
"""x^3 + y^3 = z^3 over positive integers: z3 cannot decide it, so it times out."""

CORE = """
(set-option :produce-unsat-cores true)
(declare-const x Int)
(assert (! (> x 3) :named big))
(assert (! (< x 2) :named small))
(assert (! (> x 0) :named positive))
(check-sat)
(get-unsat-core)
"""


def _int(value: str) -> int:
    """An SMT-LIB integer value: ``7`` or ``(- 7)``."""
    return -int(value[3:-1]) if value.startswith("(- ") else int(value)


def test_sat_returns_a_model_that_satisfies_the_constraints() -> None:
    script = """
    (set-option :produce-models true)
    (declare-const x Int) (declare-const y Int) (declare-const b Bool)
    (declare-fun f (Int) Int)
    (assert (and (> x 3) (< x 10) (= (+ x y) 12) b (= (f x) 7)))
    (check-sat)
    (get-value (x (+ x y)))
    """
    result = check_smt(script)
    assert result.verdict is Verdict.SAT
    x, y = _int(result.model["x"]), _int(result.model["y"])
    assert 3 < x < 10 and x + y == 12
    assert result.model["b"] == "true"
    assert result.model["f"].startswith("(lambda ((x!0 Int))")
    assert result.values == {"x": str(x), "(+ x y)": "12"}
    assert result.verdicts == [Verdict.SAT] and result.duration_s > 0
    assert "model:" in result.to_text() and f"x = {x}" in result.to_text()


def test_model_is_given_even_without_get_model_and_for_reals_and_bitvectors() -> None:
    result = check_smt(
        "(declare-const r Real) (declare-const v (_ BitVec 8)) (assert (= (* 3 r) 1)) (assert (= v #x0f)) (check-sat)"
    )
    assert result.verdict is Verdict.SAT
    assert result.model == {"r": "(/ 1.0 3.0)", "v": "#x0f"}


def test_unsat_with_named_assertions_returns_the_core() -> None:
    result = check_smt(CORE)
    assert result.verdict is Verdict.UNSAT
    assert sorted(result.unsat_core or []) == ["big", "small"]
    assert result.model == {}
    assert "unsat core: " in result.to_text()


def test_a_model_asked_for_after_unsat_is_the_answer_not_an_error() -> None:
    """z3 refuses (get-model) after unsat; the script was fine and its answer is unsat."""
    result = check_smt("(declare-const x Int)\n(assert (< x x))\n(check-sat)\n(get-model)")
    assert result.verdict is Verdict.UNSAT and result.errors == [] and result.to_text() == "unsat"
    # a real mistake next to it is still reported
    bad = check_smt("(declare-const x Int)\n(assert (< x x))\n(check-sat)\n(get-model)\n(assert (> y 1))")
    assert bad.verdict is Verdict.ERROR and bad.errors == ["line 5 column 11: unknown constant y"]


def test_unknown_on_timeout_of_a_hard_nonlinear_problem() -> None:
    result = check_smt(CUBES, timeout_s=0.3)
    assert result.verdict is Verdict.UNKNOWN
    assert result.reason == "timeout"
    assert result.model == {}


def test_unknown_on_memout() -> None:
    # bit-blasting a 2048-bit multiplication needs far more than 32 MiB
    ones = "#x" + "0" * 511 + "1"
    script = "(declare-const a (_ BitVec 2048)) (declare-const b (_ BitVec 2048))\n"
    script += f"(assert (= (bvmul a b) #x{'7' * 512})) (assert (bvugt a {ones})) (assert (bvugt b {ones})) (check-sat)"
    result = check_smt(script, config=SmtConfig(timeout_s=5, memory_mb=32))
    assert (result.verdict, result.reason) == (Verdict.UNKNOWN, "memout")


def test_incremental_push_pop_reports_every_answer_and_the_last_as_verdict() -> None:
    script = """
    (declare-const x Int)
    (push 1) (assert (> x 3)) (check-sat) (pop 1)
    (assert (< x 0)) (check-sat)
    (push) (assert (> x 0)) (check-sat) (pop)
    (check-sat-assuming ((< x -5)))
    """
    result = check_smt(script)
    assert result.verdicts == [Verdict.SAT, Verdict.SAT, Verdict.UNSAT, Verdict.SAT]
    assert result.verdict is Verdict.SAT
    assert _int(result.model["x"]) < -5
    assert "answers of each check: sat, sat, unsat, sat" in result.to_text()


def test_assertions_without_check_sat_are_checked_and_final_exit_is_accepted() -> None:
    assert check_smt("(declare-const x Int) (assert (> x 3)) (assert (< x 3))").verdict is Verdict.UNSAT
    assert check_smt("(declare-const x Int) (assert (= x 3)) (check-sat) (exit)").model == {"x": "3"}


def test_datatypes_quoted_symbols_strings_and_uninterpreted_sorts() -> None:
    colors = check_smt(
        "(declare-datatypes ((C 0)) (((red) (green)))) (declare-const c C) (assert (not (= c red))) (check-sat)"
    )
    assert colors.model == {"c": "green"}
    quoted = check_smt('(declare-const |a b| String) (assert (= |a b| "say ""hi""")) (check-sat)')
    assert quoted.model == {"|a b|": '"say ""hi"""'}
    sorts = check_smt("(declare-sort U 0) (declare-const a U) (declare-const b U) (assert (distinct a b)) (check-sat)")
    assert sorts.verdict is Verdict.SAT and set(sorts.model) == {"a", "b"}


def test_expect_and_reward() -> None:
    assert check_smt(CORE, expect="unsat").matches is True
    assert check_smt(CORE, expect=Verdict.SAT).matches is False
    assert check_smt(CORE).matches is None
    good = smt_reward(CORE, expect="unsat")
    assert (good.value, good.source) == (1.0, "z3")
    bad = smt_reward("(assert", expect="unsat")
    assert bad.value == 0.0
    assert bad.explanation is not None and "z3 said error" in bad.explanation and "never closed" in bad.explanation
    with pytest.raises(ValueError):
        check_smt(CORE, expect="maybe")


def test_z3py_program_sat_unsat_core_and_fresh_context() -> None:
    sat = check_z3py(
        "from z3 import *\nx, y = Ints('x y')\nsolver = Solver()\nsolver.add(x + y == 10, x > 7)\nprint('built')\n"
    )
    assert sat.verdict is Verdict.SAT and sat.language == "z3py"
    assert int(sat.model["x"]) + int(sat.model["y"]) == 10 and int(sat.model["x"]) > 7
    assert sat.program_output.strip() == "built"
    core = check_z3py(
        "from z3 import *\nx = Int('x')\nsolver = Solver()\nsolver.set(unsat_core=True)\n"
        "solver.assert_and_track(x > 3, 'big')\nsolver.assert_and_track(x < 2, 'small')\n"
        "solver.assert_and_track(x > 0, 'pos')\n"
    )
    assert core.verdict is Verdict.UNSAT and sorted(core.unsat_core or []) == ["big", "small"]
    # x was an Int above; a fresh context per query lets the next program make it a Bool
    again = check_z3py("from z3 import *\nx = Bool('x')\nsolver = Solver()\nsolver.add(Not(x))\n", expect="sat")
    assert again.matches and again.model == {"x": "False"}


def test_z3py_unknown_on_solver_timeout_and_optimize() -> None:
    slow = check_z3py(
        "from z3 import *\nx, y, z = Ints('x y z')\nsolver = Solver()\n"
        "solver.add(x > 0, y > 0, z > 0, x*x*x + y*y*y == z*z*z)\n",
        timeout_s=0.3,
    )
    assert (slow.verdict, slow.reason) == (Verdict.UNKNOWN, "timeout")
    opt = check_z3py("from z3 import *\nx = Int('x')\nsolver = Optimize()\nsolver.add(x > 3)\nsolver.minimize(x)\n")
    assert opt.verdict is Verdict.SAT and opt.model == {"x": "4"}


def _call(tool: object, args: object) -> object:
    return asyncio.run(tool(args))  # type: ignore[operator]


def test_tool_reports_verdicts_as_ok_and_bad_input_as_error() -> None:
    z3 = smt_tool(timeout_s=2)
    assert z3.name == "z3" and list(z3.spec.parameters["properties"]) == ["smtlib"]
    ok = _call(z3, json.dumps({"smtlib": CORE}))
    assert ok.status is ToolStatus.OK and ok.output.startswith("unsat")  # type: ignore[attr-defined]
    assert ok.data["verdict"] == "unsat"  # type: ignore[attr-defined]
    bad = _call(z3, {"smtlib": "(declare-const x Int)\n(assert (> y 3))\n(check-sat)"})
    assert bad.status is ToolStatus.ERROR  # type: ignore[attr-defined]
    assert "line 2 column 11: unknown constant y" in bad.error  # type: ignore[attr-defined]
    slow = _call(z3, {"smtlib": CUBES})
    assert slow.status is ToolStatus.OK and slow.output.startswith("unknown (reason: timeout)")  # type: ignore[attr-defined]
    assert _call(z3, {"z3py": "x"}).status is ToolStatus.INVALID_ARGUMENTS  # type: ignore[attr-defined]


def test_tool_with_z3py_takes_exactly_one_language() -> None:
    z3 = smt_tool(allow_z3py=True)
    assert sorted(z3.spec.parameters["properties"]) == ["smtlib", "z3py"]
    both = _call(z3, {"smtlib": "(check-sat)", "z3py": "solver = None"})
    assert both.status is ToolStatus.INVALID_ARGUMENTS  # type: ignore[attr-defined]
    code = _call(z3, {"z3py": "from z3 import *\nsolver = Solver()\nsolver.add(Int('n') == 5)"})
    assert code.status is ToolStatus.OK and "n = 5" in code.output  # type: ignore[attr-defined]
