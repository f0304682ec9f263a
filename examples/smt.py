"""Check constraints with the Z3 checker: SMT-LIB text, a z3py program, a reward, the tool.

    python examples/smt.py

A scheduling puzzle is checked as SMT-LIB (sat, with the schedule as the model), then
with a conflicting requirement (unsat, with the unsat core naming the clashing
requirements); the same puzzle as a z3py program; garbage input (an error, never
``sat``); the reward a trainer would use; and the ``z3`` tool a model would call.
"""

from __future__ import annotations

import asyncio

from reasonloop.tools.smt import check_smt, check_z3py, smt_reward, smt_tool

__all__ = ["main"]

SCHEDULE = """
(set-option :produce-unsat-cores true)
; three talks in slots 1..3, all different
(declare-const ada Int) (declare-const bob Int) (declare-const cy Int)
(assert (! (and (<= 1 ada 3) (<= 1 bob 3) (<= 1 cy 3)) :named slots))
(assert (! (distinct ada bob cy) :named all-different))
(assert (! (< ada bob) :named ada-before-bob))
(assert (! (= cy 1) :named cy-opens))
"""

PROGRAM = """
from z3 import *
ada, bob, cy = Ints('ada bob cy')
solver = Solver()
solver.add(*[And(1 <= t, t <= 3) for t in (ada, bob, cy)], Distinct(ada, bob, cy), ada < bob, cy == 1)
"""


def main() -> None:
    feasible = check_smt(SCHEDULE + "(check-sat)")
    print(
        f"schedule: {feasible.verdict}, ada={feasible.model['ada']} bob={feasible.model['bob']} cy={feasible.model['cy']}"
    )
    clash = check_smt(SCHEDULE + "(assert (! (= bob 1) :named bob-opens))\n(check-sat)\n(get-unsat-core)")
    print(f"with bob opening: {clash.verdict}, core: {' '.join(sorted(clash.unsat_core or []))}")
    program = check_z3py(PROGRAM)
    print(f"z3py: {program.verdict}, ada={program.model['ada']} bob={program.model['bob']}")
    garbage = check_smt("the schedule is fine, trust me")
    print(f"garbage: {garbage.verdict} ({garbage.reason}): {garbage.message}")
    reward = smt_reward(SCHEDULE + "(check-sat)", expect="sat")
    print(f"reward: {reward.value} ({reward.explanation})")
    z3 = smt_tool(timeout_s=2)
    result = asyncio.run(z3({"smtlib": "(declare-const x Int)\n(assert (> x y))\n(check-sat)"}))
    print(f"tool: {result.to_observation()}")


if __name__ == "__main__":
    main()
