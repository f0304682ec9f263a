"""Real planners on generated instances: plans are valid, broken plans are rejected at the
right step, unsolvable is unsolvable, bad input is invalid input, limits hold."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest

from reasonloop.planners.engines import ENGINES
from reasonloop.planners.generators import PlanningInstance, blocksworld, generate, gripper
from reasonloop.planners.parse import CheckedTask, check_task
from reasonloop.planners.result import PlanResult, PlanStatus, ValidationStatus
from reasonloop.planners.runner import ForkServerRunner, SubprocessRunner, _descendants
from reasonloop.planners.solve import Planner, PlannerConfig

CASES = [
    ("blocksworld", {"n_blocks": 6}),
    ("gripper", {"n_balls": 4, "n_rooms": 3}),
    ("logistics", {"n_cities": 2, "n_packages": 3}),
]


@cache
def _instance(domain: str, seed: int) -> PlanningInstance:
    return generate(domain, seed=seed, **dict(CASES)[domain])


_solved: dict[tuple[str, int], PlanResult] = {}


def _solve(planner: Planner, domain: str, seed: int) -> PlanResult:
    key = (domain, seed)
    if key not in _solved:
        inst = _instance(domain, seed)
        _solved[key] = planner.solve(inst.domain, inst.problem)
    return _solved[key]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("domain", [d for d, _ in CASES])
def test_every_plan_found_is_valid(planner: Planner, oracle: Callable[..., Any], domain: str, seed: int) -> None:
    inst = _instance(domain, seed)
    result = _solve(planner, domain, seed)
    assert result.status is PlanStatus.SOLVED_SATISFICING, result.message
    assert result.plan and result.engine == "fast-downward"
    assert 0 < result.timings.solve_s <= result.timings.total_s
    report = planner.validate(inst.domain, inst.problem, result.plan)
    assert report.status is ValidationStatus.VALID, report.message
    verdict = oracle(inst.domain, inst.problem).run(result.plan)
    assert verdict.failed_step is None and not verdict.unmet_goals


def _broken(plan: list[str], how: str, types: dict[str, str]) -> list[str]:
    out = list(plan)
    if how == "dropped":
        del out[0]
    elif how == "swapped":
        out[0], out[1] = out[1], out[0]
    else:  # wrong object: the first step's last argument becomes another object of the same type
        words = out[0].strip("()").split()
        kind = types[words[-1]]
        words[-1] = next(o for o in sorted(types) if types[o] == kind and o not in words)
        out[0] = "(" + " ".join(words) + ")"
    return out


@pytest.mark.parametrize("how", ["dropped", "swapped", "wrong-object"])
@pytest.mark.parametrize("domain", [d for d, _ in CASES])
def test_broken_plans_are_rejected_at_the_right_step(
    planner: Planner, oracle: Callable[..., Any], domain: str, how: str
) -> None:
    inst = _instance(domain, 0)
    plan = _solve(planner, domain, 0).plan
    sim = oracle(inst.domain, inst.problem)
    broken = _broken(plan, how, _objects(inst))
    verdict = sim.run(broken)
    report = planner.validate(inst.domain, inst.problem, broken)
    assert report.status is ValidationStatus.INVALID_PLAN, report.message
    assert verdict.failed_step is not None or verdict.unmet_goals, "the breakage left a valid plan"
    if verdict.failed_step is not None:
        assert report.failed_step == verdict.failed_step
        assert report.failed_action == broken[verdict.failed_step - 1]
        assert set(report.unsatisfied_preconditions) == verdict.false_preconditions
        assert f"step {verdict.failed_step} " in report.message
        assert report.state, "the explanation lists the state the step failed in"
    else:
        assert set(report.unmet_goals) == verdict.unmet_goals
        assert "goals are false" in report.message


def _objects(inst: PlanningInstance) -> dict[str, str]:
    checked = check_task(inst.domain, inst.problem)
    assert isinstance(checked, CheckedTask)
    return checked.vocab.constants


def test_unknown_object_in_a_plan_names_the_step(planner: Planner) -> None:
    inst = blocksworld(4, seed=0)
    report = planner.validate(inst.domain, inst.problem, "1. pick up b1\n2. stack b1 on b99")
    assert report.status is ValidationStatus.INVALID_INPUT
    assert report.issues[0].symbol == "b99" and "step 2" in report.message


def test_object_of_the_wrong_type_names_the_step(planner: Planner) -> None:
    inst = gripper(2, 2, seed=0)
    report = planner.validate(inst.domain, inst.problem, "(move room1 room2)\n(move room2 ball1)")
    assert report.status is ValidationStatus.INVALID_PLAN
    assert report.failed_step == 2 and report.failed_action == "(move room2 ball1)"
    assert "ball1 is a ball" in report.message and "must be a room" in report.message


@pytest.mark.parametrize("engine", ["fast-downward", "pyperplan"])
def test_unsolvable_is_reported_unsolvable(planner: Planner, engine: str) -> None:
    inst = blocksworld(3, seed=0)
    cyclic = inst.problem.split("(:goal")[0] + "(:goal (and (on b1 b2) (on b2 b1))))"
    result = planner.solve(inst.domain, cyclic, planner=engine)
    assert result.status is PlanStatus.UNSOLVABLE, result.message
    assert result.plan == [] and "plan" in result.message


def test_unreachable_goal_is_proven_unsolvable(planner: Planner) -> None:
    inst = gripper(2, 2, seed=0)
    init, goal = inst.problem.split("(:goal")
    assert "ball1" in goal
    lost = init.replace("(at ball1 room1)", "").replace("(at ball1 room2)", "") + "(:goal" + goal  # ball1 is nowhere
    result = planner.solve(inst.domain, lost)
    assert result.status is PlanStatus.UNSOLVABLE and "proved" in result.message


@pytest.mark.parametrize(
    ("problem_edit", "words"),
    [
        (lambda p: p.replace("(arm-empty)", "(arm-empty b1)"), "takes 0"),
        (lambda p: p[: len(p) // 2], "unbalanced"),
        (lambda p: "", "empty"),
        (lambda p: p.replace("(:domain blocksworld)", "(:domain logistics)"), "for domain 'logistics'"),
    ],
)
def test_malformed_input_through_the_planner(planner: Planner, problem_edit: Callable[[str], str], words: str) -> None:
    inst = blocksworld(3, seed=0)
    result = planner.solve(inst.domain, problem_edit(inst.problem))
    assert result.status is PlanStatus.INVALID_INPUT
    assert words in result.message and result.issues


def test_errors_found_only_by_unified_planning_are_invalid_input(planner: Planner) -> None:
    inst = gripper(2, 2, seed=0)
    wrong_type = inst.problem.replace("(free left)", "(free left) (at left room1)")
    result = planner.solve(inst.domain, wrong_type)
    assert result.status is PlanStatus.INVALID_INPUT
    assert result.issues[0].file == "problem" and result.issues[0].line is not None
    assert "at(left, room1)" in result.message


def test_unknown_or_missing_planner_is_a_value(
    planner: Planner, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    inst = blocksworld(3)
    unknown = planner.solve(inst.domain, inst.problem, planner="lpg")
    assert unknown.status is PlanStatus.INVALID_INPUT and "fast-downward" in unknown.message
    monkeypatch.setenv("PATH", str(tmp_path))
    no_java = planner.solve(inst.domain, inst.problem, planner="enhsp")
    assert no_java.status is PlanStatus.ENGINE_ERROR and "needs Java" in no_java.message


def test_optimal_mode_is_no_longer_than_satisficing(planner: Planner) -> None:
    inst = blocksworld(5, seed=4)
    fast = planner.solve(inst.domain, inst.problem)
    best = planner.solve(inst.domain, inst.problem, mode="optimal")
    assert best.status is PlanStatus.SOLVED_OPTIMALLY
    assert 0 < len(best.plan) <= len(fast.plan)
    assert planner.validate(inst.domain, inst.problem, best.plan).valid


def test_portfolio_takes_the_first_answer_and_leaves_no_process(planner: Planner) -> None:
    inst = blocksworld(5, seed=2)
    result = planner.solve_portfolio(inst.domain, inst.problem, planners=["fast-downward", "pyperplan"])
    assert result.status.solved and result.engine in ("fast-downward", "pyperplan")
    assert planner.validate(inst.domain, inst.problem, result.plan).valid
    worker = planner.runner.worker_pid if isinstance(planner.runner, ForkServerRunner) else None
    assert worker is not None and _descendants(worker) == []


BLOWUP_DOMAIN = """(define (domain blowup) (:predicates (p ?a) (q ?a ?b ?c ?d ?e ?f))
  (:action go :parameters (?a ?b ?c ?d ?e ?f)
    :precondition (and (p ?a) (p ?b) (p ?c) (p ?d) (p ?e) (p ?f))
    :effect (q ?a ?b ?c ?d ?e ?f)))"""


def _blowup_problem(n: int) -> str:
    objs = " ".join(f"o{i}" for i in range(n))
    facts = " ".join(f"(p o{i})" for i in range(n))
    return f"(define (problem b) (:domain blowup) (:objects {objs}) (:init {facts}) (:goal (and (q o1 o2 o3 o4 o5 o6) (q o6 o5 o4 o3 o2 o1))))"


@pytest.mark.parametrize("engine", ["fast-downward", "pyperplan"])
def test_grounding_blowup_is_stopped_without_harm(planner: Planner, engine: str) -> None:
    # 40^6 = 4e9 ground actions: grounding cannot finish; the limits must end it.
    result = planner.solve(BLOWUP_DOMAIN, _blowup_problem(40), planner=engine, timeout_s=2)
    assert result.status in (PlanStatus.TIMEOUT, PlanStatus.MEMORY_OUT), result.message
    worker = planner.runner.worker_pid if isinstance(planner.runner, ForkServerRunner) else None
    assert worker is not None and _descendants(worker) == []
    small = blocksworld(3)
    assert planner.solve(small.domain, small.problem).solved  # the worker still serves


@pytest.mark.slow
def test_memory_limit_gives_memory_out() -> None:
    # Headroom of ~50 MiB above the worker's own address space: grounding hits the limit fast.
    with Planner(PlannerConfig(memory_mb=420, timeout_s=60)) as small:
        result = small.solve(BLOWUP_DOMAIN, _blowup_problem(40), planner="pyperplan")
    assert result.status is PlanStatus.MEMORY_OUT, result.message


@pytest.mark.skipif(shutil.which("java") is None, reason="ENHSP needs Java (no 'java' on PATH)")
def test_enhsp_solves_when_java_is_present(planner: Planner) -> None:
    inst = blocksworld(3, seed=1)
    result = planner.solve(inst.domain, inst.problem, planner="enhsp")
    assert result.solved, result.message
    assert planner.validate(inst.domain, inst.problem, result.plan).valid


def test_subprocess_runner_gives_the_same_answer(planner: Planner) -> None:
    inst = blocksworld(4, seed=5)
    with Planner(runner=SubprocessRunner()) as fresh:
        alone = fresh.solve(inst.domain, inst.problem)
    assert alone.status is PlanStatus.SOLVED_SATISFICING
    assert alone.plan == planner.solve(inst.domain, inst.problem).plan


def test_engine_registry_lists_the_three_engines() -> None:
    assert list(ENGINES) == ["fast-downward", "pyperplan", "enhsp"]
    assert os.environ.get("PATH")


def test_bad_mode_and_timeout_are_values(planner: Planner) -> None:
    inst = blocksworld(3)
    assert planner.solve(inst.domain, inst.problem, mode="fastest").status is PlanStatus.INVALID_INPUT
    assert planner.solve(inst.domain, inst.problem, timeout_s=0).status is PlanStatus.INVALID_INPUT
    assert planner.validate(inst.domain, inst.problem, "", timeout_s=-1).status is ValidationStatus.INVALID_INPUT
