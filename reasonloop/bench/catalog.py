"""Registers the built-in suites in :data:`reasonloop.bench.suites.SUITES`.

Importing this module imports only the pure-Python generators; tools and planners
load when a suite's tasks or toolset are made.
"""

from __future__ import annotations

from reasonloop.bench.arith import arith_tasks
from reasonloop.bench.chain import arith_py_tasks, chain_tasks
from reasonloop.bench.logic import logic_tasks
from reasonloop.bench.lookup import lookup_tasks, lookup_tool_options
from reasonloop.bench.planning import planning_tasks
from reasonloop.bench.suites import SUITES, Suite

__all__ = ["BUILTIN_SUITES"]

BUILTIN_SUITES: tuple[Suite, ...] = (
    Suite(name="arith", generate_fn=arith_tasks, tools=("calculator",),
          description="arithmetic word problems with big numbers; one calculator call"),
    Suite(name="arith-py", generate_fn=arith_py_tasks, tools=("python",),
          description="the arith problems, solved with the sandboxed Python tool"),
    Suite(name="arith-chain", generate_fn=chain_tasks, tools=("calculator",),
          description="2-4 dependent steps; each calculator call needs the previous result"),
    Suite(name="planning", generate_fn=planning_tasks, tools=("plan", "validate_plan"),
          description="blocksworld / gripper / logistics from English; answer = a valid plan"),
    Suite(name="logic", generate_fn=logic_tasks, tools=("z3",),
          description="knights and knaves, seating, scheduling; unique solutions; Z3 (SMT-LIB)"),
    Suite(name="lookup", generate_fn=lookup_tasks, tools=("search",), default_difficulty=1,
          tool_options=lookup_tool_options,
          description="1-3 hop questions over a generated corpus of fictional entities; search tool"),
)  # fmt: skip

for _suite in BUILTIN_SUITES:
    if _suite.name not in SUITES:
        SUITES.register(_suite.name, _suite)
