"""Plan validation with explanations, built on unified-planning's SequentialPlanValidator.

The validator says whether a plan is valid and which action failed. The explanation
adds what a model needs to repair the plan: the step number, the preconditions that
are false, the state they are false in, or the goal atoms left unmet at the end.
This module imports unified-planning inside its functions; it runs in the isolated
planner process (see :mod:`reasonloop.planners.jobs`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

from reasonloop.planners.parse import ParsedTask, PddlSource, parse_task
from reasonloop.planners.render import ActionCall, read_plan
from reasonloop.planners.result import PddlIssue, Timings, ValidationReport, ValidationStatus

__all__ = ["fnode_to_pddl", "validate_in_process", "validate_parsed"]

MAX_STATE_ATOMS = 200
"""Longest state listing put in a report; bigger states are cut (the count is kept in the message)."""


def fnode_to_pddl(node: Any) -> str:
    """Write a unified-planning expression in PDDL syntax, e.g. ``(on a b)``."""
    if node.is_fluent_exp():
        return "(" + " ".join([node.fluent().name, *(fnode_to_pddl(a) for a in node.args)]) + ")"
    if node.is_object_exp():
        return str(node.object().name)
    if node.is_parameter_exp() or node.is_variable_exp():
        return "?" + str(node)
    ops = {"is_not": "not", "is_and": "and", "is_or": "or", "is_implies": "imply", "is_equals": "="}
    for test, word in ops.items():
        if getattr(node, test)():
            return "(" + " ".join([word, *(fnode_to_pddl(a) for a in node.args)]) + ")"
    return str(node)


def _conjuncts(node: Any) -> list[Any]:
    if node.is_and():
        return [c for arg in node.args for c in _conjuncts(arg)]
    return [node]


def _state_atoms(problem: Any, state: Any) -> list[str]:
    """True boolean atoms (and numeric values) of ``state``, over the fluents the problem initialises."""
    out: list[str] = []
    for fluent in problem.initial_values:
        value = state.get_value(fluent)
        if value.is_bool_constant():
            if value.bool_constant_value():
                out.append(fnode_to_pddl(fluent))
        else:
            out.append(f"(= {fnode_to_pddl(fluent)} {value})")
    return sorted(out)


def _type_name(t: Any) -> str:
    return str(getattr(t, "name", t))


def _instances(task: ParsedTask, calls: Sequence[ActionCall]) -> list[Any] | dict[str, Any]:
    """Action instances, or the details of the first step whose objects have the wrong types."""
    from unified_planning.plans import ActionInstance

    problem = task.problem
    actions = {a.name.lower(): a for a in problem.actions}
    objects = {o.name.lower(): o for o in problem.all_objects}
    out = []
    for step, call in enumerate(calls, 1):
        action = actions[call.name]
        args = [objects[a] for a in call.args]
        for param, obj in zip(action.parameters, args, strict=True):
            if not param.type.is_compatible(obj.type):
                return {
                    "failed_step": step,
                    "failed_action": call.pddl(),
                    "message": f"step {step} {call.pddl()} cannot be applied: {obj.name} is a {_type_name(obj.type)} but "
                    f"parameter ?{param.name} of {action.name} must be a {_type_name(param.type)}",
                }
        out.append(ActionInstance(action, args))
    return out


def _false_preconditions(problem: Any, action: Any, state: Any) -> list[str]:
    """Preconditions of a grounded action that are false in ``state``, conjunct by conjunct."""
    from unified_planning.model.walkers import StateEvaluator

    evaluator = StateEvaluator(problem)
    em = problem.environment.expression_manager
    binding = {
        em.ParameterExp(param): em.ObjectExp(arg.object())
        for param, arg in zip(action.action.parameters, action.actual_parameters, strict=True)
    }
    false = []
    for pre in action.action.preconditions:
        for conj in _conjuncts(pre):
            grounded = conj.substitute(binding)
            if not evaluator.evaluate(grounded, state).bool_constant_value():
                false.append(fnode_to_pddl(grounded))
    return false


def _explain_step(problem: Any, step: int, action: Any, state: Any) -> dict[str, Any]:
    failed = _false_preconditions(problem, action, state)
    atoms = _state_atoms(problem, state)
    text = f"({action.action.name} {' '.join(str(p) for p in action.actual_parameters)})"
    message = (
        f"step {step} {text} cannot be applied: precondition(s) {', '.join(failed) or '(unknown)'} are false "
        f"in the state after step {step - 1}, where these hold: {' '.join(atoms[:MAX_STATE_ATOMS])}"
    )
    return {
        "failed_step": step,
        "failed_action": text,
        "unsatisfied_preconditions": failed,
        "state": atoms[:MAX_STATE_ATOMS],
        "message": message,
    }


def _explain_goals(problem: Any, state: Any, n_steps: int) -> dict[str, Any]:
    from unified_planning.model.walkers import StateEvaluator

    evaluator = StateEvaluator(problem)
    unmet = [
        fnode_to_pddl(c)
        for goal in problem.goals
        for c in _conjuncts(goal)
        if not evaluator.evaluate(c, state).bool_constant_value()
    ]
    atoms = _state_atoms(problem, state)
    return {
        "unmet_goals": unmet,
        "state": atoms[:MAX_STATE_ATOMS],
        "message": f"every step applies, but after the last step ({n_steps}) these goals are false: "
        f"{', '.join(unmet)}; the final state is: {' '.join(atoms[:MAX_STATE_ATOMS])}",
    }


def validate_parsed(task: ParsedTask, calls: Sequence[ActionCall]) -> ValidationReport:
    """Validate actions against a parsed task and explain the first failure."""
    from unified_planning.engines.plan_validator import SequentialPlanValidator
    from unified_planning.plans import SequentialPlan

    plan = [c.pddl() for c in calls]
    instances = _instances(task, calls)
    if isinstance(instances, dict):
        return ValidationReport(status=ValidationStatus.INVALID_PLAN, plan=plan, **instances)
    problem = task.problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = SequentialPlanValidator().validate(problem, SequentialPlan(instances))
    if result.status.name == "VALID":
        return ValidationReport(
            status=ValidationStatus.VALID, plan=plan, message=f"the plan is valid ({len(plan)} steps)"
        )
    trace = result.trace
    if not trace:  # the validator gave no states to explain with; pass on its own words
        logs = " ".join(m.message for m in result.log_messages or [])
        return ValidationReport(status=ValidationStatus.INVALID_PLAN, plan=plan, message=logs or "the plan is invalid")
    if result.inapplicable_action is not None:
        details = _explain_step(problem, len(trace), result.inapplicable_action, trace[-1])
    else:
        details = _explain_goals(problem, trace[-1], len(plan))
    return ValidationReport(status=ValidationStatus.INVALID_PLAN, plan=plan, **details)


def validate_in_process(domain: PddlSource, problem: PddlSource, plan: str | Sequence[str]) -> ValidationReport:
    """Parse domain, problem and plan, then validate, all in this process.

    Use :meth:`reasonloop.planners.solve.Planner.validate` for model-written input: it
    runs this under the planner process limits.
    """
    start = time.perf_counter()
    task = parse_task(domain, problem)
    if isinstance(task, list):
        return _invalid(task, start)
    calls = read_plan(plan, task.checked.vocab)
    if calls and isinstance(calls[0], PddlIssue):
        return _invalid([c for c in calls if isinstance(c, PddlIssue)], start)
    report = validate_parsed(task, [c for c in calls if isinstance(c, ActionCall)])
    total = time.perf_counter() - start
    timings = Timings(parse_s=task.parse_s, solve_s=total - task.parse_s, total_s=total)
    return report.model_copy(update={"timings": timings})


def _invalid(issues: list[PddlIssue], start: float) -> ValidationReport:
    return ValidationReport(
        status=ValidationStatus.INVALID_INPUT,
        message="; ".join(i.describe() for i in issues),
        issues=issues,
        timings=Timings(total_s=time.perf_counter() - start),
    )
