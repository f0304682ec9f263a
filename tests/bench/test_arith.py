"""The arith suite: deterministic, verifiable, and its expert is right."""

from reasonloop.bench import arith_tasks
from reasonloop.tools.calculator import evaluate


def test_seeded_and_distinct():
    a, b = arith_tasks(20, seed=1), arith_tasks(20, seed=1)
    assert [t.model_dump() for t in a] == [t.model_dump() for t in b]
    assert [t.prompt for t in arith_tasks(5, seed=2)] != [t.prompt for t in a[:5]]
    assert len({t.id for t in a}) == 20


def test_expert_answers_are_accepted_and_perturbed_rejected():
    for difficulty in (1, 2, 3):
        for task in arith_tasks(30, seed=7, difficulty=difficulty):
            expression = task.expert[0].tool_calls[0][1]["expression"]
            assert evaluate(expression) == task.answer
            final = task.expert[-1].text
            assert task.verify(final.split("<answer>")[1].split("</answer>")[0]).correct
            assert task.verify(f"The answer is {task.answer}.").correct
            wrong = str(int(float(task.answer)) + 1)
            verdict = task.verify(wrong)
            assert not verdict.correct and verdict.score == 0.0 and task.answer in verdict.explanation
            assert not task.verify(None).correct
            assert not task.verify("I don't know").correct


def test_numbers_with_separators_are_read():
    task = arith_tasks(1, seed=3)[0].model_copy(update={"answer": "12345"})
    assert task.verify("12,345").correct
    assert task.verify("12345.0").correct
    assert not task.verify("1234").correct
