"""Real tools and recorded episodes for the agent tests.

Tools are typed ``@tool`` functions; ``push`` keeps a per-episode list in a
``SessionFactory`` so forks can prove their tool state is their own. Recorded
episodes are built step by step the way the agent records them, with tool calls
decoded by the real parsers, and served back by :class:`ReplayPolicy`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from reasonloop.policy.parsing import parse_openai_tool_calls
from reasonloop.tools.base import ToolContext, tool
from reasonloop.trajectory.schema import PolicyStep, ToolCall, ToolResult, ToolStatus, ToolStep, Trajectory


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: First term.
        b: Second term.
    """
    return a + b


@dataclass
class ListSessions:
    """Per-episode lists; counts what was opened, forked and closed."""

    opened: int = 0
    forked: int = 0
    closed: list[list[int]] = field(default_factory=list)

    def open(self) -> list[int]:
        self.opened += 1
        return []

    def fork(self, session: list[int]) -> list[int]:
        self.forked += 1
        return list(session)

    def close(self, session: list[int]) -> None:
        self.closed.append(list(session))


def make_push(sessions: ListSessions) -> Any:
    @tool(sessions=sessions)
    def push(x: int, ctx: ToolContext) -> str:
        """Append x to this episode's list and show the list.

        Args:
            x: The value to append.
        """
        ctx.session.append(x)
        return str(ctx.session)

    return push


@pytest.fixture
def list_sessions() -> ListSessions:
    return ListSessions()


class Recorded:
    """Builders of recorded episodes and a comparison helper (the ``rec`` fixture)."""

    add = add

    @staticmethod
    def calls(*calls: tuple[str, dict[str, Any] | str], text: str = "") -> PolicyStep:
        """A recorded assistant turn that calls tools (OpenAI format, decoded by the real parser)."""
        raw = [{"id": f"call_{i}", "function": {"name": n, "arguments": a}} for i, (n, a) in enumerate(calls)]
        decoded, errors = parse_openai_tool_calls(raw)
        return PolicyStep(text=text, tool_calls=decoded, parse_errors=errors, finish_reason="tool_calls", model="rec")

    @staticmethod
    def answer(answer: str) -> PolicyStep:
        return PolicyStep(text=f"Done. <answer>{answer}</answer>", finish_reason="stop", model="rec")

    @staticmethod
    def text(text: str, finish_reason: str = "stop") -> PolicyStep:
        return PolicyStep(text=text, finish_reason=finish_reason, model="rec")

    @staticmethod
    def tool(call: ToolCall, output: str) -> ToolStep:
        return ToolStep(call=call, result=ToolResult(status=ToolStatus.OK, output=output))

    @staticmethod
    def episode(prompt: str, *steps: Any, task_id: str = "t0") -> Trajectory:
        """A recorded episode for ``prompt`` (a replay serves only its policy steps)."""
        return Trajectory(task_id=task_id, messages=[{"role": "user", "content": prompt}], steps=list(steps))

    @staticmethod
    def comparable(step: Any) -> dict[str, Any]:
        """A step without its wall-clock fields, for comparing two runs."""
        out = dict(step) if isinstance(step, dict) else step.model_dump(mode="json")
        out.pop("started_at", None)
        out.pop("duration_s", None)
        if out.get("kind") == "tool":
            out["result"] = {k: v for k, v in out["result"].items() if k != "duration_s"}
        return out


@pytest.fixture
def rec() -> type[Recorded]:
    return Recorded


@pytest.fixture
def push(list_sessions: ListSessions) -> Any:
    return make_push(list_sessions)
