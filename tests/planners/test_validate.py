"""Explanations name the step, the false preconditions, the state, or the unmet goals."""

from __future__ import annotations

from reasonloop.planners.generators import blocksworld
from reasonloop.planners.result import ValidationStatus
from reasonloop.planners.validate import validate_in_process

DOMAIN = blocksworld(2).domain
PROBLEM = """(define (problem p) (:domain blocksworld) (:objects a b)
  (:init (arm-empty) (on-table a) (on-table b) (clear a) (clear b))
  (:goal (and (on a b) (clear a))))"""


def test_valid_plan_in_loose_format() -> None:
    report = validate_in_process(DOMAIN, PROBLEM, "1. pick up block a\n2. stack a on b")
    assert report.status is ValidationStatus.VALID and report.plan == ["(pick-up a)", "(stack a b)"]
    assert report.timings.total_s >= report.timings.parse_s > 0


def test_inapplicable_step_names_precondition_and_state() -> None:
    report = validate_in_process(DOMAIN, PROBLEM, ["(pick-up a)", "(pick-up b)"])
    assert report.status is ValidationStatus.INVALID_PLAN
    assert report.failed_step == 2 and report.failed_action == "(pick-up b)"
    assert report.unsatisfied_preconditions == ["(arm-empty)"]
    assert report.state == ["(clear b)", "(holding a)", "(on-table b)"]
    assert "step 2 (pick-up b)" in report.message and "(arm-empty)" in report.message


def test_unmet_goals_are_listed_after_the_last_step() -> None:
    report = validate_in_process(DOMAIN, PROBLEM, "(pick-up a)")
    assert report.status is ValidationStatus.INVALID_PLAN and report.failed_step is None
    assert report.unmet_goals == ["(on a b)", "(clear a)"]
    assert "after the last step (1)" in report.message


def test_empty_plan_fails_on_goals_and_bad_text_is_invalid_input() -> None:
    assert validate_in_process(DOMAIN, PROBLEM, "").unmet_goals == ["(on a b)"]  # (clear a) holds at the start
    bad = validate_in_process(DOMAIN, PROBLEM, "1. fly to the moon")
    assert bad.status is ValidationStatus.INVALID_INPUT and "unknown action 'fly'" in bad.message
    broken_problem = validate_in_process(DOMAIN, PROBLEM.replace("(on a b)", "(on a)"), "(pick-up a)")
    assert broken_problem.status is ValidationStatus.INVALID_INPUT and broken_problem.issues[0].symbol == "on"
