"""Rewards: pluggable, composable scores of a finished trajectory.

A reward function takes the trajectory and (optionally) its task and returns one
:class:`~reasonloop.trajectory.schema.Reward` (name, value, source, explanation), or
``None`` when it does not apply. :class:`RewardStack` combines named components into
the list recorded in ``Trajectory.rewards``; ``Trajectory.reward`` is their sum.

The paper's reward (``arpo``, see ARPO.md) is a composition:

    -1                          when the format is bad (unbalanced tags, a tool call
                                without a result, no final answer)
    correctness (+ 0.1 bonus)   otherwise; the bonus when more than one kind of tool
                                was used and the answer is right

Correctness is any registered component (``exact``, ``f1``, ``math``, ``verifier``);
the project's verifiers (plan validation, SMT checks) are reached through ``verifier``,
which calls the task's own :meth:`~reasonloop.bench.task.Task.verify`.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reasonloop.policy.parsing import extract_answer
from reasonloop.registry import Registry
from reasonloop.trajectory.schema import PolicyStep, Reward, ToolStep, Trajectory

if TYPE_CHECKING:
    from reasonloop.bench.task import Task

__all__ = [
    "REWARDS",
    "RewardFn",
    "RewardStack",
    "exact_match_reward",
    "format_problems",
    "format_reward",
    "math_reward",
    "multi_tool_bonus",
    "normalise_answer",
    "token_f1",
    "token_f1_reward",
    "verifier_reward",
]

RewardFn = Callable[[Trajectory, "Task | None"], Reward | None]
"""``(trajectory, task) -> Reward`` (``None``: the component does not apply)."""

SOURCE = "reasonloop.training.rewards"
_TAG = re.compile(r"</?([A-Za-z_][\w\-]*)>")


def normalise_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (SQuAD normalisation)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction: str, reference: str) -> float:
    """Bag-of-tokens F1 between two normalised strings (1.0 when both are empty)."""
    pred, ref = normalise_answer(prediction).split(), normalise_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def _unbalanced(text: str) -> list[str]:
    """Tag names whose openings and closings do not pair up in ``text``."""
    depth: Counter[str] = Counter()
    bad: set[str] = set()
    for match in _TAG.finditer(text):
        name, closing = match.group(1), match.group(0).startswith("</")
        depth[name] += -1 if closing else 1
        if depth[name] < 0:
            bad.add(name)
    bad.update(name for name, d in depth.items() if d != 0)
    return sorted(bad)


def format_problems(traj: Trajectory) -> list[str]:
    """Why ``traj``'s format is bad (empty when it is fine).

    Bad: a policy turn with unbalanced tags or an undecodable tool call, a tool call
    without a result step, no final answer in ``<answer>`` tags, or an episode that
    did not finish.
    """
    problems: list[str] = []
    calls: list[str] = []
    results: set[str] = set()
    for index, step in enumerate(traj.steps):
        if isinstance(step, PolicyStep):
            if step.finish_reason == "error":
                continue
            if bad := _unbalanced(step.text):
                problems.append(f"step {index}: unbalanced tags {', '.join(bad)}")
            if step.parse_errors:
                problems.append(f"step {index}: undecodable tool call")
            calls.extend(c.id for c in step.tool_calls)
        elif isinstance(step, ToolStep):
            results.add(step.call.id)
    if missing := [c for c in calls if c not in results]:
        problems.append(f"{len(missing)} tool call(s) without a result")
    last = traj.policy_steps()[-1] if traj.policy_steps() else None
    if traj.status != "finished" or last is None or extract_answer(last.text) is None:
        problems.append("no final answer in <answer> tags")
    return problems


def format_reward(traj: Trajectory, task: Task | None = None) -> Reward:
    """-1 on a bad format (see :func:`format_problems`), else 0."""
    problems = format_problems(traj)
    return Reward(name="format", value=-1.0 if problems else 0.0, source=f"{SOURCE}:format",
                  explanation="; ".join(problems) or "well formed")


def _reference(task: Task | None) -> str | None:
    return None if task is None else task.answer


def exact_match_reward(traj: Trajectory, task: Task | None) -> Reward | None:
    """1 when the normalised final answer equals the task's reference answer."""
    ref = _reference(task)
    if ref is None:
        return None
    ok = traj.final_answer is not None and normalise_answer(traj.final_answer) == normalise_answer(ref)
    return Reward(name="exact", value=float(ok), source=f"{SOURCE}:exact",
                  explanation=f"reference {ref!r}, answer {traj.final_answer!r}")


def token_f1_reward(traj: Trajectory, task: Task | None) -> Reward | None:
    """Token F1 of the final answer against the reference (the paper's QA score)."""
    ref = _reference(task)
    if ref is None:
        return None
    value = token_f1(traj.final_answer or "", ref) if traj.final_answer else 0.0
    return Reward(name="f1", value=value, source=f"{SOURCE}:f1", explanation=f"reference {ref!r}")


def math_reward(traj: Trajectory, task: Task | None) -> Reward | None:
    """1 when math-verify finds the final answer equivalent to the reference (``1/2`` == ``0.5``)."""
    ref = _reference(task)
    if ref is None:
        return None
    from math_verify import parse, verify

    ok = False
    if traj.final_answer:
        try:
            ok = bool(verify(parse(ref), parse(traj.final_answer)))
        except Exception:  # math-verify parses untrusted text; a failure is a wrong answer
            ok = False
    return Reward(name="math", value=float(ok), source=f"{SOURCE}:math-verify",
                  explanation=f"reference {ref!r}, answer {traj.final_answer!r}")


def verifier_reward(traj: Trajectory, task: Task | None) -> Reward | None:
    """The task's own verifier (numeric, exact, plan validity, SMT...) as a reward."""
    if task is None:
        return None
    verdict = task.verify(traj.final_answer, traj)
    return Reward(name="verifier", value=verdict.score, source=f"verifier:{task.verifier}",
                  explanation=verdict.explanation)


def multi_tool_bonus(traj: Trajectory, correct: bool, bonus: float = 0.1) -> Reward:
    """``bonus`` when the answer is right and more than one kind of tool was used."""
    kinds = {s.call.name for s in traj.tool_steps()}
    value = bonus if correct and len(kinds) > 1 else 0.0
    return Reward(name="multi_tool", value=value, source=f"{SOURCE}:multi_tool",
                  explanation=f"{len(kinds)} kind(s) of tool used")


REWARDS: Registry[RewardFn] = Registry("reward")
REWARDS.register("format", format_reward)
REWARDS.register("exact", exact_match_reward)
REWARDS.register("f1", token_f1_reward)
REWARDS.register("math", math_reward)
REWARDS.register("verifier", verifier_reward)


@dataclass(kw_only=True)
class RewardStack:
    """A composition of reward components, recorded one :class:`Reward` each.

    With ``gate_on_format`` (the paper's rule) a bad format gives exactly one
    component, ``format = -1``, and nothing else; otherwise ``format`` is 0 and the
    correctness components follow, plus the multi-tool bonus.
    """

    correctness: Sequence[str] = ("verifier",)
    """Registered components summed into the score (each recorded on its own)."""
    gate_on_format: bool = True
    """Apply the -1-on-bad-format rule (``False``: correctness only)."""
    multi_tool_bonus: float = 0.1
    """Bonus for a right answer that used more than one kind of tool (0 disables)."""
    correct_threshold: float = 1.0
    """A correctness score at or above this counts as right (for the bonus and accuracy)."""
    extra: dict[str, RewardFn] = field(default_factory=dict)
    """Components given as functions instead of registered names."""

    def __post_init__(self) -> None:
        for name in self.correctness:
            if name not in self.extra:
                REWARDS.get(name)  # fail now, with the valid names, on a typo

    def _component(self, name: str) -> RewardFn:
        return self.extra[name] if name in self.extra else REWARDS.get(name)

    def score(self, traj: Trajectory, task: Task | None = None) -> list[Reward]:
        """The reward components of ``traj`` (attach them with ``traj.rewards.extend``)."""
        out: list[Reward] = []
        if self.gate_on_format:
            fmt = format_reward(traj, task)
            out.append(fmt)
            if fmt.value < 0:
                return out
        parts = [r for name in self.correctness if (r := self._component(name)(traj, task)) is not None]
        out.extend(parts)
        correct = bool(parts) and all(r.value >= self.correct_threshold for r in parts)
        if self.multi_tool_bonus:
            out.append(multi_tool_bonus(traj, correct, self.multi_tool_bonus))
        return out

    def is_correct(self, rewards: Sequence[Reward]) -> bool:
        """Whether the correctness components in ``rewards`` all reach the threshold."""
        parts = [r for r in rewards if r.name not in ("format", "multi_tool")]
        return bool(parts) and all(r.value >= self.correct_threshold for r in parts)

    def scorer(self, task: Task | None) -> Callable[[Trajectory], list[Reward]]:
        """A runtime scorer (``AgentRuntime(scorer=...)``) bound to ``task``."""
        return lambda traj: self.score(traj, task)

    def as_dict(self) -> dict[str, Any]:
        return {"correctness": list(self.correctness), "gate_on_format": self.gate_on_format,
                "multi_tool_bonus": self.multi_tool_bonus}
