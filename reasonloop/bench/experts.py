"""Scripted experts as recordings: a task's expert turns as a replayable trajectory.

The recording holds only the expert's assistant turns. Replaying it through the real
agent and the real tools (with :class:`~reasonloop.policy.replay.ReplayPolicy`)
produces the full trajectory, tool results included, which is what tests and SFT
data use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from reasonloop.bench.task import Task
from reasonloop.policy.base import ToolFormat, ToolSpec
from reasonloop.policy.parsing import extract_answer, render_tool_call
from reasonloop.trajectory.schema import PolicyStep, ToolCall, Trajectory

__all__ = ["EXPERT_MODEL", "expert_messages", "expert_policy", "expert_recording", "write_expert_jsonl"]

EXPERT_MODEL = "scripted-expert"


def expert_recording(
    task: Task,
    messages: Sequence[dict[str, Any]],
    *,
    tool_format: ToolFormat = "openai",
    specs: Sequence[ToolSpec] = (),
) -> Trajectory:
    """The task's expert turns as a recorded trajectory starting from ``messages``.

    Args:
        task: A task with a non-empty ``expert``.
        messages: The initial messages the agent will start from (system + user).
        tool_format: How the expert writes its tool calls (``openai`` keeps them
            structured; ``tags``/``json`` also write them into the text).
        specs: Tool specs, used to render tag-format calls.
    """
    if not task.expert:
        raise ValueError(f"task {task.id} has no scripted expert")
    by_name = {s.name: s for s in specs}
    steps: list[PolicyStep] = []
    for turn_no, turn in enumerate(task.expert):
        calls = [ToolCall(id=f"call_{turn_no}_{j}", name=n, arguments=dict(a)) for j, (n, a) in enumerate(turn.tool_calls)]
        text = turn.text
        if tool_format != "openai":
            text += "".join("\n" + render_tool_call(c, tool_format, by_name.get(c.name)) for c in calls)
        steps.append(
            PolicyStep(
                node="policy", text=text, tool_calls=calls, model=EXPERT_MODEL,
                finish_reason="tool_calls" if calls else "stop",
            )
        )
    return Trajectory(
        task_id=task.id,
        agent=EXPERT_MODEL,
        model=EXPERT_MODEL,
        messages=[dict(m) for m in messages],
        steps=list(steps),
        final_answer=extract_answer(steps[-1].text),
        status="finished",
        metadata={"tool_format": tool_format, "source": EXPERT_MODEL, "suite": task.suite},
    )


def expert_messages(task: Task, system_prompt: str | None) -> list[dict[str, Any]]:
    """The initial messages an agent with ``system_prompt`` starts ``task`` from."""
    head = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*head, {"role": "user", "content": task.prompt}]


def expert_policy(tasks: Iterable[Task], *, system_prompt: str | None, tool_format: ToolFormat = "openai") -> Any:
    """A :class:`~reasonloop.policy.replay.ReplayPolicy` serving the tasks' scripted experts.

    ``system_prompt`` must be the agent's: recordings are matched by initial messages.
    """
    from reasonloop.policy.replay import ReplayPolicy

    recordings = [expert_recording(t, expert_messages(t, system_prompt), tool_format=tool_format) for t in tasks]
    return ReplayPolicy(recordings, name=EXPERT_MODEL)


def write_expert_jsonl(tasks: Iterable[Task], path: str | Path, *, system_prompt: str | None) -> int:
    """Write the tasks' expert recordings as JSONL (for ``--model replay:PATH``); returns the count."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [expert_recording(t, expert_messages(t, system_prompt)).to_json() for t in tasks]
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(out)
    return len(lines)
