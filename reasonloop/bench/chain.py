"""``arith-chain`` and ``arith-py``: arithmetic that needs several dependent tool calls,
and the ``arith`` problems solved with the Python tool.

``arith-chain``: a story of ``difficulty + 1`` steps (2-4) where each step works on
the previous step's result. The scripted expert makes one calculator call per step,
and each call after the first writes the previous call's result as a literal number:
the second call cannot be written before the first one has answered.

``arith-py``: the ``arith`` word problems, solved by one ``python`` call that prints
the value (the Python tool runs in the sandbox).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from fractions import Fraction

from reasonloop.bench.arith import arith_tasks
from reasonloop.bench.task import ExpertTurn, Task

__all__ = ["arith_py_tasks", "chain_tasks"]

_GOODS = ["jars of honey", "bags of rice", "rolls of cloth", "boxes of nails", "crates of apples", "sacks of flour"]
_TOWNS = ["Ardell", "Brisk", "Calloway", "Dunmore", "Eskby", "Fenwick", "Garrow", "Holt"]

Step = Callable[[random.Random, int], tuple[str, str] | None]
"""``step(rng, value)`` -> (sentence, expression template with ``{x}``), or None if it does not fit."""


def _times(rng: random.Random, value: int) -> tuple[str, str]:
    k = rng.randint(3, 29)
    return f"Each of those is then sold for {k} coins; how many coins does that bring?", f"{{x}} * {k}"


def _split(rng: random.Random, value: int) -> tuple[str, str] | None:
    divisors = [d for d in range(3, 40) if value % d == 0]
    if not divisors:
        return None
    d = rng.choice(divisors)
    return f"That amount is shared equally by {d} partners; how much does each partner get?", f"{{x}} / {d}"


def _minus(rng: random.Random, value: int) -> tuple[str, str] | None:
    if value < 20:
        return None
    c = rng.randint(1, value // 3)
    return f"Then {c} of it is paid as a fee; what is left?", f"{{x}} - {c}"


def _plus(rng: random.Random, value: int) -> tuple[str, str]:
    c = rng.randint(100, 5000)
    return f"Then {c} more is added from a second source; what is the new total?", f"{{x}} + {c}"


_STEPS: list[Step] = [_times, _split, _minus, _plus]


def _chain(rng: random.Random, hops: int) -> tuple[str, list[str], list[int]]:
    a, b = rng.randint(12, 250), rng.randint(11, 99)
    goods, town = rng.choice(_GOODS), rng.choice(_TOWNS)
    sentences = [f"The market of {town} receives {a} carts with {b} {goods} each; how many {goods} is that?"]
    expressions, values = [f"{a} * {b}"], [a * b]
    while len(expressions) < hops:
        made = rng.choice(_STEPS)(rng, values[-1])
        if made is None:
            continue
        sentence, template = made
        expression = template.format(x=values[-1])
        value = Fraction(eval_exact(expression))
        if value.denominator != 1 or value <= 0:
            continue
        sentences.append(sentence)
        expressions.append(expression)
        values.append(int(value))
    return " ".join(sentences), expressions, values


def eval_exact(expression: str) -> Fraction:
    """Exact value of a generated expression (``a op b`` on integers)."""
    from reasonloop.tools.calculator import evaluate

    return Fraction(evaluate(expression))


def chain_tasks(n: int, *, seed: int = 0, difficulty: int = 2) -> list[Task]:
    """``n`` problems of ``difficulty + 1`` dependent steps (deterministic)."""
    if difficulty not in (1, 2, 3):
        raise ValueError("difficulty must be 1, 2 or 3")
    rng = random.Random(f"arith-chain/{seed}/{difficulty}")
    tasks: list[Task] = []
    for i in range(n):
        story, expressions, values = _chain(rng, difficulty + 1)
        answer = str(values[-1])
        turns = [ExpertTurn(text="First step.", tool_calls=[("calculator", {"expression": expressions[0]})])]
        turns += [
            ExpertTurn(text=f"That gives {prev}. Next step.", tool_calls=[("calculator", {"expression": expr})])
            for prev, expr in zip(values, expressions[1:], strict=False)
        ]
        turns.append(ExpertTurn(text=f"The final result is {answer}. <answer>{answer}</answer>"))
        tasks.append(
            Task(
                id=f"arith-chain-{seed}-{difficulty}-{i}",
                suite="arith-chain",
                prompt=story + " Answer the last question. Use the calculator for every step, then give the final "
                "number in <answer></answer> tags.",
                answer=answer,
                tools=["calculator"],
                verifier="numeric",
                expert=turns,
                metadata={"expressions": expressions, "values": values, "difficulty": difficulty, "seed": seed},
            )
        )
    return tasks


def arith_py_tasks(n: int, *, seed: int = 0, difficulty: int = 2) -> list[Task]:
    """The ``arith`` problems, for the Python tool: the expert prints the expression's value."""
    tasks = []
    for task in arith_tasks(n, seed=seed, difficulty=difficulty):
        expression = task.metadata["expression"]
        tasks.append(
            task.model_copy(
                update={
                    "id": task.id.replace("arith-", "arith-py-", 1),
                    "suite": "arith-py",
                    "prompt": task.prompt.replace("Use the calculator", "Use Python"),
                    "tools": ["python"],
                    "expert": [
                        ExpertTurn(text="I will compute this in Python.", tool_calls=[("python", {"code": f"print({expression})"})]),
                        task.expert[-1],
                    ],
                },
                deep=True,
            )
        )
    return tasks
