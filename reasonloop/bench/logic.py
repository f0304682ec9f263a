"""The ``logic`` suite: constraint puzzles with exactly one solution, solved with Z3.

Three kinds, drawn per task: knights and knaves (who tells the truth?), seating (who
sits where in a row?) and scheduling (in which order are the talks?). Each puzzle is
generated around a hidden solution; clues true of it are added until brute force
(pure Python, no solver needed) finds exactly one solution. ``difficulty`` sets the
number of people (knights: 3-5, seating/scheduling: 4-6).

The scripted expert writes the puzzle as SMT-LIB, calls the ``z3`` tool, reads the
model and answers. The ``logic`` verifier compares the names in the answer with the
solution: as a set for knights (``"knights: Ann, Cid"`` or ``"none"``), in order for
seating and scheduling (``"Ann, Bo, Cid, Dee"``).
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reasonloop.bench.task import VERIFIERS, ExpertTurn, Task, Verdict
from reasonloop.trajectory.schema import Trajectory

__all__ = ["answer_from_model", "logic_match", "logic_tasks"]

_NAMES = ["Ada", "Bram", "Cleo", "Dov", "Esme", "Finn", "Gia", "Hugo", "Ivo", "Juno", "Kai", "Lena"]

Clue = tuple[Any, ...]

# -- knights and knaves ---------------------------------------------------------------


def _kk_eval(clue: Clue, world: Mapping[str, bool]) -> bool:
    kind, *args = clue
    if kind == "is":
        return world[args[0]] == args[1]
    if kind == "same":
        return world[args[0]] == world[args[1]]
    if kind == "some":
        return world[args[0]] or world[args[1]]
    return not world[args[0]] and not world[args[1]]  # "both_knaves"


def _kk_text(clue: Clue) -> str:
    kind, *args = clue
    if kind == "is":
        return f"{args[0]} is a {'knight' if args[1] else 'knave'}"
    if kind == "same":
        return f"{args[0]} and {args[1]} are of the same kind"
    if kind == "some":
        return f"at least one of {args[0]} and {args[1]} is a knight"
    return f"{args[0]} and {args[1]} are both knaves"


def _kk_smt(clue: Clue) -> str:
    kind, *args = clue
    if kind == "is":
        return args[0] if args[1] else f"(not {args[0]})"
    if kind == "same":
        return f"(= {args[0]} {args[1]})"
    if kind == "some":
        return f"(or {args[0]} {args[1]})"
    return f"(and (not {args[0]}) (not {args[1]}))"


def _kk_clue(rng: random.Random, speaker: str, names: list[str]) -> Clue:
    others = [x for x in names if x != speaker]
    kind = rng.choice(["is", "is", "same", "some", "both_knaves"])
    if kind == "is":
        return ("is", rng.choice(others), rng.random() < 0.5)
    a, b = rng.sample(others, 2) if len(others) > 1 else (others[0], speaker)
    return (kind, a, b)


def _knights(rng: random.Random, size: int) -> dict[str, Any]:
    names = sorted(rng.sample(_NAMES, size))
    while True:
        says = {name: _kk_clue(rng, name, names) for name in names}
        worlds = [dict(zip(names, bits, strict=True)) for bits in itertools.product([True, False], repeat=size)]
        sols = [w for w in worlds if all(w[s] == _kk_eval(c, w) for s, c in says.items())]
        if len(sols) == 1:
            break
    knights = [n for n in names if sols[0][n]]
    lines = [f"{s} says: \"{_sentence(_kk_text(c))}\"" for s, c in says.items()]
    prompt = (
        f"On an island every inhabitant is a knight (always tells the truth) or a knave (always lies). "
        f"You meet {', '.join(names)}. " + " ".join(lines) + " Who are the knights? Answer with their names, "
        "comma separated (or 'none'), in <answer></answer> tags."
    )
    smt = [f"(declare-const {n} Bool)" for n in names]
    smt += [f"(assert (= {s} {_kk_smt(c)}))" for s, c in says.items()]
    answer = ", ".join(knights) or "none"
    return {"prompt": prompt, "smt": smt, "answer": answer, "names": names, "answer_kind": "set", "puzzle": "knights"}


# -- seating and scheduling (permutations) ------------------------------------------------

_PERM_CLUES: dict[str, tuple[Callable[[dict[str, int], Clue, int], bool], Callable[[Clue, int], str]]] = {
    "before": (lambda p, c, n: p[c[1]] < p[c[2]], lambda c, n: f"(< {c[1]} {c[2]})"),
    "right_before": (lambda p, c, n: p[c[1]] + 1 == p[c[2]], lambda c, n: f"(= (+ {c[1]} 1) {c[2]})"),
    "adjacent": (lambda p, c, n: abs(p[c[1]] - p[c[2]]) == 1,
                 lambda c, n: f"(or (= (+ {c[1]} 1) {c[2]}) (= (+ {c[2]} 1) {c[1]}))"),
    "apart": (lambda p, c, n: abs(p[c[1]] - p[c[2]]) != 1,
              lambda c, n: f"(not (or (= (+ {c[1]} 1) {c[2]}) (= (+ {c[2]} 1) {c[1]})))"),
    "at": (lambda p, c, n: p[c[1]] == c[2], lambda c, n: f"(= {c[1]} {c[2]})"),
    "inner": (lambda p, c, n: 1 < p[c[1]] < n, lambda c, n: f"(and (> {c[1]} 1) (< {c[1]} {n}))"),
    "end": (lambda p, c, n: p[c[1]] in (1, n), lambda c, n: f"(or (= {c[1]} 1) (= {c[1]} {n}))"),
}  # fmt: skip

_SEATING_TEXT = {
    "before": "{1} sits somewhere to the left of {2}",
    "right_before": "{1} sits immediately to the left of {2}",
    "adjacent": "{1} sits next to {2}",
    "apart": "{1} does not sit next to {2}",
    "at": "{1} sits in seat {2}",
    "inner": "{1} does not sit at either end",
    "end": "{1} sits at one end of the row",
}
_SCHEDULE_TEXT = {
    "before": "{1}'s talk is earlier than {2}'s",
    "right_before": "{1}'s talk is immediately before {2}'s",
    "adjacent": "the talks of {1} and {2} are back to back",
    "apart": "the talks of {1} and {2} are not back to back",
    "at": "{1} speaks in slot {2}",
    "inner": "{1} speaks neither first nor last",
    "end": "{1} speaks either first or last",
}


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _perm_clue(rng: random.Random, names: list[str], n: int) -> Clue:
    kind = rng.choice(["before", "before", "right_before", "adjacent", "apart", "at", "inner", "end"])
    if kind in ("at",):
        return (kind, rng.choice(names), rng.randint(1, n))
    if kind in ("inner", "end"):
        return (kind, rng.choice(names))
    return (kind, *rng.sample(names, 2))


def _permutation_puzzle(rng: random.Random, size: int, kind: str) -> dict[str, Any]:
    names = sorted(rng.sample(_NAMES, size))
    hidden = dict(zip(names, rng.sample(range(1, size + 1), size), strict=True))
    perms = [dict(zip(names, p, strict=True)) for p in itertools.permutations(range(1, size + 1))]
    clues: list[Clue] = []
    while len(perms) > 1:
        clue = _perm_clue(rng, names, size)
        check = _PERM_CLUES[clue[0]][0]
        if not check(hidden, clue, size) or clue in clues:
            continue
        kept = [p for p in perms if check(p, clue, size)]
        if len(kept) < len(perms):  # only clues that narrow the search
            clues.append(clue)
            perms = kept
    order = sorted(names, key=lambda x: hidden[x])
    texts = _SEATING_TEXT if kind == "seating" else _SCHEDULE_TEXT
    facts = " ".join(_sentence(texts[c[0]].format(*c)) for c in clues)
    if kind == "seating":
        intro = f"{', '.join(names)} sit in a row of {size} seats numbered 1 to {size} from left to right."
        ask = "Who sits where? Answer with the names from left to right, comma separated, in <answer></answer> tags."
    else:
        intro = f"{', '.join(names)} each give one talk, in slots 1 to {size} (one talk per slot)."
        ask = "In which order do they speak? Answer with the names from first to last, comma separated, in <answer></answer> tags."
    smt = [f"(declare-const {x} Int)" for x in names]
    smt += [f"(assert (and (>= {x} 1) (<= {x} {size})))" for x in names]
    smt.append(f"(assert (distinct {' '.join(names)}))")
    smt += [f"(assert {_PERM_CLUES[c[0]][1](c, size)})" for c in clues]
    return {"prompt": f"{intro} {facts} {ask}", "smt": smt, "answer": ", ".join(order), "names": names,
            "answer_kind": "sequence", "puzzle": kind}  # fmt: skip


_KINDS: dict[str, Callable[[random.Random, int], dict[str, Any]]] = {
    "knights": lambda rng, d: _knights(rng, d + 2),
    "seating": lambda rng, d: _permutation_puzzle(rng, d + 3, "seating"),
    "scheduling": lambda rng, d: _permutation_puzzle(rng, d + 3, "scheduling"),
}


def answer_from_model(task: Task, model: Mapping[str, str]) -> str:
    """The answer a Z3 model of the expert's encoding gives (names as in the task)."""
    names: list[str] = task.metadata["names"]
    if task.metadata["answer_kind"] == "set":
        return ", ".join(n for n in names if model.get(n) == "true") or "none"
    return ", ".join(sorted(names, key=lambda n: int(model[n])))


def logic_tasks(n: int, *, seed: int = 0, difficulty: int = 2) -> list[Task]:
    """``n`` puzzles (kinds drawn at random), each with exactly one solution."""
    if difficulty not in (1, 2, 3):
        raise ValueError("difficulty must be 1, 2 or 3")
    rng = random.Random(f"logic/{seed}/{difficulty}")
    tasks = []
    for i in range(n):
        kind = rng.choice(sorted(_KINDS))
        made = _KINDS[kind](rng, difficulty)
        script = "\n".join([*made["smt"], "(check-sat)", "(get-model)"])
        tasks.append(
            Task(
                id=f"logic-{seed}-{difficulty}-{i}",
                suite="logic",
                prompt=made["prompt"] + " Encode the puzzle for the z3 tool (SMT-LIB) and read the model.",
                answer=made["answer"],
                tools=["z3"],
                verifier="logic",
                expert=[
                    ExpertTurn(text="I encode the clues as SMT-LIB constraints.", tool_calls=[("z3", {"smtlib": script})]),
                    ExpertTurn(text=f"The model gives the solution. <answer>{made['answer']}</answer>"),
                ],
                metadata={"names": made["names"], "answer_kind": made["answer_kind"], "puzzle": made["puzzle"],
                          "smtlib": script, "difficulty": difficulty, "seed": seed},
            )
        )
    return tasks


def _names_in(text: str, names: Sequence[str]) -> list[str]:
    known = set(names)
    return [w for w in re.findall(r"[A-Za-z]+", text) if w in known]


@VERIFIERS.decorator("logic")
def logic_match(task: Task, answer: str | None, trajectory: Trajectory | None = None) -> Verdict:
    """Names in the answer equal the solution: as a set (``answer_kind="set"``) or in order."""
    if answer is None or not answer.strip():
        return Verdict(score=0.0, correct=False, explanation="no answer")
    names = task.metadata.get("names", [])
    got, want = _names_in(answer, names), _names_in(task.answer, names)
    if task.metadata.get("answer_kind") == "set":
        ok = set(got) == set(want) and (bool(got) or "none" in answer.lower())
    else:
        ok = got == want
    why = "matches the solution" if ok else f"expected {task.answer!r}, got {answer.strip()[:120]!r}"
    return Verdict(score=float(ok), correct=ok, explanation=why)
