"""The ``planning`` suite: blocksworld, gripper and logistics tasks given in English.

Instances come from :mod:`reasonloop.planners.generators` (imported when tasks are
generated, never at import time). The prompt holds the domain in PDDL and the task in
English; the agent writes the problem in PDDL, and may call ``plan`` (a classical
planner) and ``validate_plan``. The answer is the plan, one action per line.

The ``plan`` verifier checks the answer against the instance with the planners'
validator (:func:`reasonloop.planners.validate_in_process`): any valid plan scores 1.

The scripted expert writes the problem PDDL, checks a plan from the suite's own
reference solver (a few lines per domain, always valid, not optimal) with
``validate_plan``, and answers with that plan: every step of its trajectory is
consistent with the tool results it read.
"""

from __future__ import annotations

import random
import re
from typing import Any

from reasonloop.bench.task import VERIFIERS, ExpertTurn, Task, Verdict
from reasonloop.trajectory.schema import Trajectory

__all__ = ["MAX_PLAN_CHARS", "SIZES", "plan_valid", "planning_tasks", "reference_plan"]

MAX_PLAN_CHARS = 20_000
"""Longer answers are rejected before validation."""

SIZES: dict[int, dict[str, dict[str, int]]] = {
    1: {"blocksworld": {"n_blocks": 3}, "gripper": {"n_balls": 2}, "logistics": {"n_packages": 1}},
    2: {"blocksworld": {"n_blocks": 5}, "gripper": {"n_balls": 4}, "logistics": {"n_packages": 2}},
    3: {"blocksworld": {"n_blocks": 7}, "gripper": {"n_balls": 6, "n_rooms": 3},
        "logistics": {"n_packages": 3, "n_cities": 3}},
}  # fmt: skip
"""Instance sizes per difficulty."""

_ATOM = re.compile(r"\(([a-z-]+)((?: [A-Za-z0-9_-]+)*)\)")


def _atoms(pddl: str) -> list[tuple[str, ...]]:
    return [(m.group(1), *m.group(2).split()) for m in _ATOM.finditer(pddl)]


def _init_goal(problem: str) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    init, goal = problem.split("(:goal", 1)
    return _atoms(init.split("(:init", 1)[1]), _atoms(goal)


def _blocksworld(init: list[tuple[str, ...]], goal: list[tuple[str, ...]]) -> list[str]:
    below = {a[1]: a[2] for a in init if a[0] == "on"}
    above = {v: k for k, v in below.items()}
    plan: list[str] = []
    for base in [a[1] for a in init if a[0] == "on-table"]:
        tower = [base]
        while tower[-1] in above:
            tower.append(above[tower[-1]])
        for upper, lower in zip(reversed(tower[1:]), reversed(tower[:-1]), strict=True):
            plan += [f"(unstack {upper} {lower})", f"(put-down {upper})"]
    want = {a[1]: a[2] for a in goal if a[0] == "on"}
    placed: set[str] = set()
    while len(placed) < len(want):
        for upper, lower in want.items():
            if upper not in placed and (lower not in want or lower in placed):
                plan += [f"(pick-up {upper})", f"(stack {upper} {lower})"]
                placed.add(upper)
    return plan


def _gripper(init: list[tuple[str, ...]], goal: list[tuple[str, ...]]) -> list[str]:
    robot = next(a[1] for a in init if a[0] == "at-robby")
    where = {a[1]: a[2] for a in init if a[0] == "at"}
    plan: list[str] = []
    for _, ball, room in (a for a in goal if a[0] == "at"):
        if where[ball] == room:
            continue
        if robot != where[ball]:
            plan.append(f"(move {robot} {where[ball]})")
        plan += [f"(pick {ball} {where[ball]} left)", f"(move {where[ball]} {room})", f"(drop {ball} {room} left)"]
        robot = room
    return plan


def _logistics(init: list[tuple[str, ...]], goal: list[tuple[str, ...]]) -> list[str]:
    city = {a[1]: a[2] for a in init if a[0] == "in-city"}
    at = {a[1]: a[2] for a in init if a[0] == "at"}
    truck_of = {city[at[t]]: t for t in at if t.startswith("truck")}
    airport = {c: p for p, c in city.items() if p.startswith("airport")}
    plane = min(t for t in at if t.startswith("plane"))
    plan: list[str] = []

    def move(vehicle: str, to: str) -> None:
        if at[vehicle] != to:
            step = f"(fly-airplane {vehicle} {at[vehicle]} {to})" if vehicle == plane else \
                f"(drive-truck {vehicle} {at[vehicle]} {to} {city[to]})"  # fmt: skip
            plan.append(step)
            at[vehicle] = to

    def carry(pkg: str, vehicle: str, src: str, dst: str) -> None:
        kind = "airplane" if vehicle == plane else "truck"
        move(vehicle, src)
        plan.append(f"(load-{kind} {pkg} {vehicle} {src})")
        move(vehicle, dst)
        plan.append(f"(unload-{kind} {pkg} {vehicle} {dst})")

    for _, pkg, dst in (a for a in goal if a[0] == "at"):
        src = at[pkg]
        if src == dst:
            continue
        if city[src] == city[dst]:
            carry(pkg, truck_of[city[src]], src, dst)
            continue
        hub_a, hub_b = airport[city[src]], airport[city[dst]]
        if src != hub_a:
            carry(pkg, truck_of[city[src]], src, hub_a)
        carry(pkg, plane, hub_a, hub_b)
        if dst != hub_b:
            carry(pkg, truck_of[city[dst]], hub_b, dst)
    return plan


_SOLVERS = {"blocksworld": _blocksworld, "gripper": _gripper, "logistics": _logistics}


def reference_plan(domain_name: str, problem: str) -> list[str]:
    """A valid (not optimal) plan for a generated instance, in PDDL syntax."""
    init, goal = _init_goal(problem)
    return _SOLVERS[domain_name](init, goal)


def planning_tasks(n: int, *, seed: int = 0, difficulty: int = 2) -> list[Task]:
    """``n`` instances, domains drawn at random, sizes from :data:`SIZES`."""
    from reasonloop.planners.generators import generate

    if difficulty not in SIZES:
        raise ValueError(f"difficulty must be one of {sorted(SIZES)}")
    rng = random.Random(f"planning/{seed}/{difficulty}")
    tasks = []
    for i in range(n):
        plan = ""
        while not plan:  # an instance whose goal already holds asks for nothing; draw another
            domain_name = rng.choice(sorted(_SOLVERS))
            inst = generate(domain_name, seed=rng.randrange(10**6), **SIZES[difficulty][domain_name])
            plan = "\n".join(reference_plan(domain_name, inst.problem))
        prompt = (
            f"Planning task ({domain_name}). The domain in PDDL:\n{inst.domain}\nThe task:\n{inst.description}\n"
            "Write the problem in PDDL for the planner tools, then give the plan, one PDDL action per line, "
            "e.g. (action arg1 arg2), inside <answer></answer> tags."
        )
        check = {"domain": inst.domain, "problem": inst.problem, "plan": plan}
        tasks.append(
            Task(
                id=f"planning-{seed}-{difficulty}-{i}",
                suite="planning",
                prompt=prompt,
                answer=plan,
                tools=["plan", "validate_plan"],
                verifier="plan",
                expert=[
                    ExpertTurn(text="I write the problem in PDDL and check my plan.", tool_calls=[("validate_plan", check)]),
                    ExpertTurn(text=f"The plan is valid.\n<answer>\n{plan}\n</answer>"),
                ],
                metadata={"domain_name": domain_name, "instance": inst.name, "domain": inst.domain,
                          "problem": inst.problem, "difficulty": difficulty, "seed": seed},
            )
        )
    return tasks


@VERIFIERS.decorator("plan")
def plan_valid(task: Task, answer: str | None, trajectory: Trajectory | None = None) -> Verdict:
    """The answer is a valid plan for ``metadata["domain"]``/``["problem"]`` (any valid plan scores 1)."""
    if answer is None or not answer.strip():
        return Verdict(score=0.0, correct=False, explanation="no answer")
    if len(answer) > MAX_PLAN_CHARS:
        return Verdict(score=0.0, correct=False, explanation=f"the plan is longer than {MAX_PLAN_CHARS} characters")
    from reasonloop.planners.validate import validate_in_process

    meta: dict[str, Any] = task.metadata
    try:
        report = validate_in_process(meta["domain"], meta["problem"], answer)
    except Exception as exc:  # the validator must not take the run down with it
        return Verdict(score=0.0, correct=False, explanation=f"validation failed: {type(exc).__name__}: {exc}")
    ok = report.valid
    return Verdict(score=float(ok), correct=ok, explanation=f"{report.status.value}: {report.message}"[:500])
