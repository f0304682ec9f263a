"""A policy that serves recorded trajectories back, deterministically.

Replaying a trajectory through the same agent and tools reproduces its steps and,
when it was recorded with token ids, its exact token stream: ``start`` returns the
recorded prompt ids, ``generate`` the recorded assistant turn (text, tool calls,
ids, log-probs, entropies) and ``extend`` the recorded forced ids between two
policy steps. It never invents text: a context no recording matches gets a
:class:`Completion` with ``finish_reason="error"`` whose ``text`` explains why.

Matching: an episode is matched to a recording by its initial messages (the
trajectory's ``messages``, i.e. system and user prompt; narrow with ``task_id``
when several tasks share a prompt), and the turn by the number of assistant
messages already in the context. Recorded policy steps with
``finish_reason="error"`` put nothing in the context and are not replayed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from reasonloop.errors import ConfigError
from reasonloop.policy.base import Completion, Context, SamplingParams, ToolFormat, ToolSpec
from reasonloop.trajectory.schema import PolicyStep, Trajectory

__all__ = ["ReplayPolicy"]


@dataclass(kw_only=True)
class _Turn:
    completion: Completion
    context_len: int
    """Length of the recorded token stream before this turn."""
    forced_after: list[int] = field(default_factory=list)
    """Forced ids recorded between this turn and the next one."""


@dataclass(kw_only=True)
class _Recording:
    trajectory: Trajectory
    turns: list[_Turn]
    stream: list[int] | None
    """The whole recorded token stream; ``None`` when recorded without ids."""


def _key(messages: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(messages), sort_keys=True, ensure_ascii=False, default=str)


def _completion(step: PolicyStep) -> Completion:
    return Completion(
        text=step.text,
        tool_calls=list(step.tool_calls),
        parse_errors=list(step.parse_errors),
        finish_reason=step.finish_reason,
        token_ids=list(step.token_ids),
        logprobs=step.logprobs,
        entropies=step.entropies,
        entropy_kind=step.entropy_kind,
        top_k=step.top_k,
        usage=step.usage,
        model=step.model,
        cached=step.cached,
    )


def _recording(traj: Trajectory) -> _Recording:
    turns: list[_Turn] = []
    pos = len(traj.prompt_token_ids)
    for step in traj.steps:
        if isinstance(step, PolicyStep):
            if step.finish_reason != "error":
                turns.append(_Turn(completion=_completion(step), context_len=pos))
        elif turns:
            turns[-1].forced_after.extend(step.token_ids)
        pos += len(step.token_ids)
    stream = traj.token_ids() if traj.prompt_token_ids else None
    return _Recording(trajectory=traj, turns=turns, stream=stream)


class ReplayPolicy:
    """Serves recorded assistant turns (see the module docstring for the matching rules)."""

    def __init__(
        self,
        trajectories: Iterable[Trajectory],
        *,
        task_id: str | None = None,
        name: str | None = None,
        tool_format: ToolFormat | None = None,
    ) -> None:
        """Index ``trajectories`` by their initial messages.

        Args:
            trajectories: Recorded episodes; with several for one prompt, the first wins.
            task_id: Serve only recordings of this task.
            name: Recorded as the model name (default ``replay``).
            tool_format: Override the format recorded in the trajectories' metadata.
        """
        recordings = [_recording(t) for t in trajectories if task_id is None or t.task_id == task_id]
        self._index: dict[str, _Recording] = {}
        for rec in recordings:
            self._index.setdefault(_key(rec.trajectory.messages), rec)
        self._lengths = sorted({len(r.trajectory.messages) for r in recordings}, reverse=True)
        fmt = tool_format
        if fmt is None:
            recorded = recordings[0].trajectory.metadata.get("tool_format") if recordings else None
            fmt = recorded if recorded is not None else "openai"
        if fmt not in get_args(ToolFormat):
            raise ConfigError(f"tool_format: {fmt!r} is not one of {', '.join(get_args(ToolFormat))}")
        self._tool_format: ToolFormat = fmt
        self._name = name or "replay"

    @classmethod
    def from_jsonl(cls, path: str | Path, **options: Any) -> ReplayPolicy:
        """Load trajectories from a JSONL file (one ``Trajectory`` JSON per line)."""
        trajectories = []
        with Path(path).open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    trajectories.append(Trajectory.model_validate_json(line))
                except ValueError as exc:
                    raise ConfigError(f"{path}:{lineno}: not a trajectory ({exc})") from exc
        return cls(trajectories, **options)

    @property
    def name(self) -> str:
        return self._name

    @property
    def tool_format(self) -> ToolFormat:
        return self._tool_format

    def __len__(self) -> int:
        return len(self._index)

    def _find(self, messages: Sequence[dict[str, Any]]) -> _Recording | None:
        for n in self._lengths:
            if len(messages) >= n and (rec := self._index.get(_key(messages[:n]))) is not None:
                return rec
        return None

    def start(self, messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]) -> list[int] | None:
        rec = self._find(messages)
        if rec is None or rec.stream is None:
            return None
        return list(rec.trajectory.prompt_token_ids)

    def extend(
        self, context: Context, new_messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]
    ) -> list[int] | None:
        rec = self._find(context.messages)
        if rec is None or rec.stream is None:
            return None
        turn = _assistant_turns(context.messages)
        if not 0 < turn <= len(rec.turns):
            return None
        return list(rec.turns[turn - 1].forced_after)

    async def generate(self, context: Context, tools: Sequence[ToolSpec], sampling: SamplingParams) -> Completion:
        rec = self._find(context.messages)
        if rec is None:
            return _error(f"no recording starts with these messages ({len(self._index)} recorded prompts)")
        turn = _assistant_turns(context.messages)
        if turn >= len(rec.turns):
            return _error(f"the recording of task {rec.trajectory.task_id!r} has only {len(rec.turns)} assistant turns")
        served = rec.turns[turn]
        if context.token_ids is not None and rec.stream is not None:
            expected = rec.stream[: served.context_len]
            if context.token_ids != expected:
                at = next((i for i, (a, b) in enumerate(zip(context.token_ids, expected, strict=False)) if a != b),
                          min(len(context.token_ids), len(expected)))
                return _error(f"the context diverged from the recording at token {at} before turn {turn}")
        return served.completion.model_copy()


def _assistant_turns(messages: Sequence[dict[str, Any]]) -> int:
    return sum(1 for m in messages if m.get("role") == "assistant")


def _error(why: str) -> Completion:
    return Completion(text=f"replay: {why}", finish_reason="error", model="replay")
