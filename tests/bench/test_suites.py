"""Every suite: seeded, any size, the verifier accepts the expert's answers and rejects perturbed ones."""

import re
from fractions import Fraction

import pytest

from reasonloop.bench import SUITES, Task
from reasonloop.bench.lookup import build_world, lookup_tasks
from reasonloop.bench.planning import reference_plan
from reasonloop.errors import ConfigError, UnknownNameError

ALL = ["arith", "arith-py", "arith-chain", "logic", "lookup", "planning"]


def expert_answer(task: Task) -> str:
    final = task.expert[-1].text
    return re.search(r"<answer>(.*?)</answer>", final, re.S).group(1).strip()


def perturb(task: Task) -> list[str]:
    """Wrong answers close to the right one."""
    answer = expert_answer(task)
    if task.verifier == "numeric":
        value = Fraction(answer)
        return [str(value + 1), str(value * 10), str(value + Fraction(1, 100))]
    if task.verifier == "logic":
        names = task.metadata["names"]
        got = [n.strip() for n in answer.split(",")]
        if task.metadata["answer_kind"] == "set":
            flip = names[0]
            toggled = [n for n in got if n != flip] if flip in got else [*got, flip]
            return [", ".join(n for n in toggled if n != "none") or "none"]
        return [", ".join([got[1], got[0], *got[2:]]), ", ".join(reversed(got))]
    if task.verifier == "plan":
        lines = answer.splitlines()
        return ["\n".join(lines[:-1]) or "(nothing)", "\n".join(lines[1:] + lines[:1])]
    return [answer + "x", "Unknown"]


@pytest.mark.parametrize("name", ALL)
def test_registered_seeded_and_sized(name):
    suite = SUITES.get(name)
    a, b = suite.generate(7, seed=3), suite.generate(7, seed=3)
    assert [t.model_dump() for t in a] == [t.model_dump() for t in b]
    assert len({t.id for t in a}) == 7 and all(t.suite == name and t.expert for t in a)
    assert [t.prompt for t in suite.generate(3, seed=4)] != [t.prompt for t in a[:3]]
    assert suite.generate(0) == []
    assert set(suite.tools) >= {n for t in a for turn in t.expert for n, _ in turn.tool_calls}


@pytest.mark.parametrize("name", ALL)
def test_expert_answers_accepted_and_perturbed_rejected(name):
    suite = SUITES.get(name)
    for difficulty in suite.difficulties:
        tasks = suite.generate(8 if name != "planning" else 3, seed=11, difficulty=difficulty)
        for task in tasks:
            verdict = task.verify(expert_answer(task))
            assert verdict.correct and verdict.score == 1.0, (task.id, verdict.explanation)
            for wrong in perturb(task):
                bad = task.verify(wrong)
                assert not bad.correct and bad.score == 0.0, (task.id, wrong)
            assert not task.verify(None).correct and not task.verify("  ").correct


def test_difficulty_and_size_are_checked():
    with pytest.raises(ConfigError, match="difficulty"):
        SUITES.get("logic").generate(3, difficulty=9)
    with pytest.raises(ConfigError, match="n must be"):
        SUITES.get("arith").generate(-1)
    with pytest.raises(UnknownNameError, match="arith-chain"):
        SUITES.get("aritm")


def test_arith_chain_calls_depend_on_the_previous_result():
    for task in SUITES.get("arith-chain").generate(20, seed=2, difficulty=3):
        values, exprs = task.metadata["values"], task.metadata["expressions"]
        assert len(exprs) == 4 and task.answer == str(values[-1])
        for prev, expr in zip(values, exprs[1:], strict=False):
            assert expr.startswith(f"{prev} ")  # the second call cannot be written before the first answered


def test_logic_puzzles_cover_all_kinds_and_are_unique():
    from reasonloop.tools.smt import check_smt

    tasks = SUITES.get("logic").generate(12, seed=5, difficulty=1)
    assert {t.metadata["puzzle"] for t in tasks} == {"knights", "seating", "scheduling"}
    for task in tasks[:6]:  # Z3 agrees there is exactly one solution
        names = task.metadata["names"]
        if task.metadata["answer_kind"] == "set":
            knights = set(expert_answer(task).split(", "))
            same = " ".join(n if n in knights else f"(not {n})" for n in names)
        else:
            order = expert_answer(task).split(", ")
            same = " ".join(f"(= {n} {order.index(n) + 1})" for n in names)
        base = task.metadata["smtlib"].replace("(get-model)", "")
        assert check_smt(base).verdict.value == "sat"
        assert check_smt(base.replace("(check-sat)", f"(assert (not (and {same})))\n(check-sat)")).verdict.value == "unsat"


def test_lookup_answers_need_the_corpus():
    tasks = lookup_tasks(90, seed=1, difficulty=3)
    world = build_world(1, 3)
    assert len(world.people) == 120
    for task in tasks:
        assert task.answer not in task.prompt  # not readable off the question
        assert task.answer in world.towns[world.firms[task.metadata["hops"][0]]["based_in"]]["region"]
    # task i is the same question whatever n is
    assert lookup_tasks(5, seed=1, difficulty=3)[4].model_dump() == tasks[4].model_dump() | {
        "metadata": tasks[4].metadata | {"corpus": {"seed": 1, "blocks": 1}}
    }


def test_reference_plans_are_nonempty():
    for task in SUITES.get("planning").generate(9, seed=8, difficulty=3):
        plan = reference_plan(task.metadata["domain_name"], task.metadata["problem"])
        assert plan and "\n".join(plan) == task.answer
