"""Loosely written plans are read back to actions; rendered plans read back to themselves."""

from __future__ import annotations

import pytest

from reasonloop.planners.checks import Vocabulary
from reasonloop.planners.generators import blocksworld, gripper, logistics
from reasonloop.planners.parse import CheckedTask, check_task
from reasonloop.planners.render import ActionCall, read_plan, render_plan, render_state, split_action
from reasonloop.planners.result import PddlIssue


def _vocab(inst) -> Vocabulary:  # type: ignore[no-untyped-def]
    checked = check_task(inst.domain, inst.problem)
    assert isinstance(checked, CheckedTask)
    return checked.vocab


BW = _vocab(blocksworld(4, seed=0))


@pytest.mark.parametrize(
    "text",
    [
        "(unstack b1 b2)",
        "unstack(b1, b2)",
        "unstack b1 b2",
        "1. unstack block b1 from block b2",
        "Step 1: Unstack b1 from b2.",
        "- unstack b1 from on top of b2",
        "0.000: (unstack b1 b2) [1]",
        "UNSTACK B1 B2",
    ],
)
def test_one_step_in_any_usual_format(text: str) -> None:
    assert read_plan(text, BW) == [ActionCall("unstack", ("b1", "b2"))]


def test_multi_word_action_names_and_headers() -> None:
    text = "Plan:\n1. pick up block b3\n2. put down b3\n; a comment\n\n3) pick_up(b3)\n4. PickUp b3\n; cost = 4 (unit cost)"
    got = read_plan(text, BW)
    assert (
        got == [ActionCall("pick-up", ("b3",)), ActionCall("put-down", ("b3",))] + [ActionCall("pick-up", ("b3",))] * 2
    )


def test_several_groups_on_one_line_and_lists() -> None:
    assert read_plan("(pick-up b1) (stack b1 b2)", BW) == [
        ActionCall("pick-up", ("b1",)),
        ActionCall("stack", ("b1", "b2")),
    ]
    assert read_plan(["(pick-up b1)", "stack b1 on b2"], BW) == [
        ActionCall("pick-up", ("b1",)),
        ActionCall("stack", ("b1", "b2")),
    ]


def test_unknown_action_is_named_with_the_valid_ones() -> None:
    issues = read_plan("(pick-up b1)\n(grab b2)", BW)
    assert len(issues) == 1 and isinstance(issues[0], PddlIssue)
    assert issues[0].line == 2 and issues[0].symbol == "grab"
    assert "step 2" in issues[0].message and "pick-up, put-down, stack, unstack" in issues[0].message


def test_unknown_object_is_named() -> None:
    issues = read_plan("(pick-up b1)\n(stack b1 zz)", BW)
    assert len(issues) == 1 and isinstance(issues[0], PddlIssue)
    assert issues[0].symbol == "zz" and "step 2" in issues[0].message and "'zz'" in issues[0].message


def test_wrong_arity_is_reported() -> None:
    issues = read_plan("stack b1", BW)
    assert isinstance(issues[0], PddlIssue) and "takes 2" in issues[0].message and "1 known" in issues[0].message


@pytest.mark.parametrize(
    "make", [lambda: blocksworld(6, seed=3), lambda: gripper(3, 3, seed=2), lambda: logistics(2, 2, seed=4)]
)
def test_rendered_plans_read_back_exactly(make) -> None:  # type: ignore[no-untyped-def]
    inst = make()
    vocab = _vocab(inst)
    # Every action with every parameter bound to some object of the right arity.
    objects = sorted(vocab.constants)
    plan = [
        ActionCall(name, tuple(objects[i % len(objects)] for i in range(len(params)))).pddl()
        for name, params in vocab.actions.items()
    ]
    text = render_plan(plan, inst.action_templates)
    assert len(text.splitlines()) == len(plan)
    assert [c.pddl() for c in read_plan(text, vocab)] == plan  # type: ignore[union-attr]


def test_render_state_and_empty_plan() -> None:
    facts = blocksworld(2).fact_templates
    assert render_state(["(on b1 b2)", "(arm-empty)"], facts) == "the hand is empty. b1 is on b2."
    assert "goal already holds" in render_plan([])
    assert render_plan(["(fly p1 a b)"]) == "1. fly p1 a b"
    assert split_action("stack(a, b)") == ActionCall("stack", ("a", "b"))
