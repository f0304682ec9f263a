"""Verifiers for standard data: math answers (math-verify), QA (EM / F1), logic labels."""

from __future__ import annotations

import re
import string
from collections import Counter

from reasonloop.bench.task import VERIFIERS, Task, Verdict
from reasonloop.trajectory.schema import Trajectory

__all__ = ["LABELS", "label_match", "last_boxed", "math_match", "normalize_answer", "qa_em", "qa_f1", "token_f1"]

LABELS = {"true": "true", "false": "false", "unknown": "unknown", "uncertain": "unknown"}
"""Logic labels as written in FOLIO/ProofWriter -> the canonical one."""

_MAX_ANSWER_CHARS = 10_000
_PUNCTUATION = frozenset(string.punctuation)


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (braces balanced), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


def _empty(answer: str | None) -> Verdict | None:
    if answer is None or not answer.strip():
        return Verdict(score=0.0, correct=False, explanation="no answer")
    if len(answer) > _MAX_ANSWER_CHARS:
        return Verdict(score=0.0, correct=False, explanation=f"answer longer than {_MAX_ANSWER_CHARS} characters")
    return None


@VERIFIERS.decorator("math")
def math_match(task: Task, answer: str | None, trajectory: Trajectory | None = None) -> Verdict:
    """Mathematical equivalence with math-verify (``1/2`` = ``0.5`` = ``\\frac{1}{2}``)."""
    if (bad := _empty(answer)) is not None:
        return bad
    assert answer is not None
    try:
        from math_verify import parse, verify
    except ImportError:
        ok = answer.strip() == task.answer.strip()
        return Verdict(score=float(ok), correct=ok, explanation="math-verify is not installed; compared as text")
    wrap = lambda s: s if "$" in s or "\\boxed" in s else f"${s}$"  # noqa: E731  (math-verify reads LaTeX)
    try:
        ok = bool(verify(parse(wrap(task.answer)), parse(wrap(answer))))
    except Exception as exc:  # math-verify raising on odd input is a wrong answer, not a crash
        return Verdict(score=0.0, correct=False, explanation=f"could not compare: {type(exc).__name__}")
    why = "equivalent to the reference" if ok else f"expected {task.answer}, got {answer.strip()[:80]}"
    return Verdict(score=float(ok), correct=ok, explanation=why)


def normalize_answer(text: str) -> str:
    """SQuAD/HotpotQA normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction: str, reference: str) -> float:
    """Token-level F1 between normalised answers (HotpotQA's yes/no/noanswer rule included)."""
    pred, ref = normalize_answer(prediction), normalize_answer(reference)
    if pred in ("yes", "no", "noanswer") or ref in ("yes", "no", "noanswer"):
        return float(pred == ref)
    common = Counter(pred.split()) & Counter(ref.split())
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred.split()), same / len(ref.split())
    return 2 * precision * recall / (precision + recall)


@VERIFIERS.decorator("qa-em")
def qa_em(task: Task, answer: str | None, trajectory: Trajectory | None = None) -> Verdict:
    """Exact match after SQuAD normalisation."""
    if (bad := _empty(answer)) is not None:
        return bad
    assert answer is not None
    ok = normalize_answer(answer) == normalize_answer(task.answer)
    return Verdict(score=float(ok), correct=ok, explanation="exact match" if ok else f"expected {task.answer!r}")


@VERIFIERS.decorator("qa-f1")
def qa_f1(task: Task, answer: str | None, trajectory: Trajectory | None = None) -> Verdict:
    """Score = token F1; correct = exact match (both after normalisation)."""
    if (bad := _empty(answer)) is not None:
        return bad
    assert answer is not None
    f1 = token_f1(answer, task.answer)
    ok = normalize_answer(answer) == normalize_answer(task.answer)
    return Verdict(score=f1, correct=ok, explanation=f"F1 {f1:.2f}" + ("" if ok else f"; expected {task.answer!r}"))


@VERIFIERS.decorator("label")
def label_match(task: Task, answer: str | None, trajectory: Trajectory | None = None) -> Verdict:
    """The first True/False/Unknown (or Uncertain) word of the answer equals the reference label."""
    if (bad := _empty(answer)) is not None:
        return bad
    assert answer is not None
    found = re.search(r"\b(true|false|unknown|uncertain)\b", answer.lower())
    if found is None:
        return Verdict(score=0.0, correct=False, explanation="no True/False/Unknown in the answer")
    got = LABELS[found.group(1)]
    ok = got == LABELS.get(task.answer.lower(), task.answer.lower())
    return Verdict(score=float(ok), correct=ok, explanation=f"label {got}" + ("" if ok else f"; expected {task.answer}"))
