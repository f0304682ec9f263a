"""Scripted experts as recordings: a task's expert turns as a replayable trajectory.

The recording holds only the expert's assistant turns. Replaying it through the real
agent and the real tools (with :class:`~reasonloop.policy.replay.ReplayPolicy`)
produces the full trajectory, tool results included, which is what tests and SFT
data use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reasonloop.bench.task import Task
from reasonloop.policy.base import ToolFormat, ToolSpec
from reasonloop.policy.parsing import extract_answer, render_tool_call
from reasonloop.trajectory.schema import PolicyStep, ToolCall, Trajectory

__all__ = ["EXPERT_MODEL", "expert_recording"]

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
