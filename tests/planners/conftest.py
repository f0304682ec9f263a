"""Shared planner fixtures: one warm planner per test session and an independent STRIPS oracle."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from reasonloop.planners.render import split_action
from reasonloop.planners.sexpr import Atom, Node, SList, read_sexpr
from reasonloop.planners.solve import Planner, PlannerConfig


@pytest.fixture(scope="session")
def planner() -> Iterator[Planner]:
    with Planner(PlannerConfig(timeout_s=30)) as p:
        yield p


@dataclass
class OracleVerdict:
    """What the oracle says about a plan: first failing step (1-based) or unmet goals."""

    failed_step: int | None
    false_preconditions: set[str]
    unmet_goals: set[str]


def _atoms(node: Node) -> tuple[list[SList], list[SList]]:
    """Positive and negated atoms of a conjunction."""
    if isinstance(node, Atom) or not node.items:
        return [], []
    if node.head() == "and":
        pos: list[SList] = []
        neg: list[SList] = []
        for sub in node.items[1:]:
            p, n = _atoms(sub)
            pos += p
            neg += n
        return pos, neg
    if node.head() == "not":
        inner = node.items[1]
        assert isinstance(inner, SList)
        return [], [inner]
    return [node], []


def _ground(atom: SList, binding: dict[str, str]) -> str:
    words = [a.text for a in atom.items if isinstance(a, Atom)]
    return "(" + " ".join(binding.get(w, w) for w in words) + ")"


class StripsOracle:
    """A from-scratch STRIPS simulator for the generators' domains (no unified-planning)."""

    def __init__(self, domain: str, problem: str) -> None:
        self.actions: dict[str, tuple[list[str], Node, Node]] = {}
        for sec in read_sexpr(domain, "domain").items[2:]:
            if isinstance(sec, SList) and sec.head() == ":action":
                name = sec.items[1]
                assert isinstance(name, Atom)
                fields = {
                    k.text: v for k, v in zip(sec.items[2::2], sec.items[3::2], strict=False) if isinstance(k, Atom)
                }
                params_node = fields[":parameters"]
                assert isinstance(params_node, SList)
                params = [a.text for a in params_node.items if isinstance(a, Atom) and a.text.startswith("?")]
                self.actions[name.text] = (params, fields[":precondition"], fields[":effect"])
        self.init: set[str] = set()
        self.goal: list[str] = []
        for sec in read_sexpr(problem, "problem").items[2:]:
            if isinstance(sec, SList) and sec.head() == ":init":
                self.init = {_ground(a, {}) for a in sec.items[1:] if isinstance(a, SList)}
            if isinstance(sec, SList) and sec.head() == ":goal":
                pos, _ = _atoms(sec.items[1])
                self.goal = [_ground(a, {}) for a in pos]

    def run(self, plan: list[str]) -> OracleVerdict:
        state = set(self.init)
        for step, text in enumerate(plan, 1):
            call = split_action(text)
            params, pre, eff = self.actions[call.name]
            binding = dict(zip(params, call.args, strict=True))
            pos, neg = _atoms(pre)
            false = {_ground(a, binding) for a in pos if _ground(a, binding) not in state}
            false |= {"(not " + _ground(a, binding) + ")" for a in neg if _ground(a, binding) in state}
            if false:
                return OracleVerdict(step, false, set())
            add, delete = _atoms(eff)
            state -= {_ground(a, binding) for a in delete}
            state |= {_ground(a, binding) for a in add}
        return OracleVerdict(None, set(), {g for g in self.goal if g not in state})


@pytest.fixture
def oracle() -> Callable[[str, str], StripsOracle]:
    return StripsOracle
