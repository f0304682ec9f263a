"""The ``arith`` suite: arithmetic word problems whose numbers are too big to guess.

Seeded, any size. ``difficulty`` sets how many operations a problem chains (1-3).
Each task carries a scripted expert: one calculator call with the expression, then
the answer in ``<answer>`` tags.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from reasonloop.bench.task import ExpertTurn, Task

__all__ = ["arith_tasks"]

_ITEMS = ["boxes", "crates", "bottles", "tickets", "books", "tiles", "bricks", "seeds"]
_PLACES = ["warehouse", "library", "stadium", "factory", "farm", "school", "harbour", "bakery"]

Template = Callable[[random.Random], tuple[str, str]]


def _mul_sub(rng: random.Random) -> tuple[str, str]:
    a, b, c = rng.randint(120, 999), rng.randint(12, 99), rng.randint(100, 2000)
    item, place = rng.choice(_ITEMS), rng.choice(_PLACES)
    text = (
        f"A {place} has {a} pallets with {b} {item} on each. {c} {item} are shipped out. "
        f"How many {item} are left?"
    )
    return text, f"{a} * {b} - {c}"


def _sum_div(rng: random.Random) -> tuple[str, str]:
    k = rng.randint(3, 9)
    total_parts = [rng.randint(100, 900) for _ in range(3)]
    remainder = sum(total_parts) % k
    total_parts[0] += (k - remainder) % k
    a, b, c = total_parts
    item, place = rng.choice(_ITEMS), rng.choice(_PLACES)
    text = (
        f"Three trucks bring {a}, {b} and {c} {item} to a {place}. The {item} are split equally "
        f"among {k} rooms. How many {item} does each room get?"
    )
    return text, f"({a} + {b} + {c}) / {k}"


def _rate(rng: random.Random) -> tuple[str, str]:
    per_hour, hours, days = rng.randint(37, 149), rng.randint(6, 14), rng.randint(11, 31)
    item, place = rng.choice(_ITEMS), rng.choice(_PLACES)
    text = (
        f"A machine in a {place} makes {per_hour} {item} per hour and runs {hours} hours a day. "
        f"How many {item} does it make in {days} days?"
    )
    return text, f"{per_hour} * {hours} * {days}"


def _percent(rng: random.Random) -> tuple[str, str]:
    price, pct, qty = rng.randint(20, 400) * 5, rng.choice([5, 10, 15, 20, 25, 30, 40]), rng.randint(13, 97)
    item = rng.choice(_ITEMS)
    text = (
        f"One pack of {item} costs {price} dollars. A shop gives {pct}% off every pack. "
        f"What do {qty} packs cost after the discount, in dollars?"
    )
    return text, f"{qty} * {price} * (100 - {pct}) / 100"


_TEMPLATES: dict[int, list[Template]] = {1: [_mul_sub, _rate], 2: [_mul_sub, _sum_div, _rate], 3: [_percent, _sum_div]}


def _value(expression: str) -> str:
    from reasonloop.tools.calculator import evaluate

    return evaluate(expression)


def arith_tasks(n: int, *, seed: int = 0, difficulty: int = 2) -> list[Task]:
    """``n`` arithmetic word problems (deterministic for a given seed and difficulty)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    if difficulty not in _TEMPLATES:
        raise ValueError(f"difficulty must be one of {sorted(_TEMPLATES)}")
    rng = random.Random(f"arith/{seed}/{difficulty}")
    tasks = []
    for i in range(n):
        text, expression = rng.choice(_TEMPLATES[difficulty])(rng)
        answer = _value(expression)
        tasks.append(
            Task(
                id=f"arith-{seed}-{difficulty}-{i}",
                suite="arith",
                prompt=text + " Use the calculator, then give the final number in <answer></answer> tags.",
                answer=answer,
                tools=["calculator"],
                verifier="numeric",
                expert=[
                    ExpertTurn(text="I will compute this.", tool_calls=[("calculator", {"expression": expression})]),
                    ExpertTurn(text=f"The result is {answer}. <answer>{answer}</answer>"),
                ],
                metadata={"expression": expression, "difficulty": difficulty, "seed": seed},
            )
        )
    return tasks
