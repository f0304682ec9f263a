"""Per-step framework overhead of the ReAct agent, next to LangGraph's prebuilt one.

    python benchmarks/agent_overhead.py [--steps 10] [--reps 200]

Both agents run the same episode: ``--steps`` assistant turns that each call a
trivial tool, then an answer. The models cost nothing: ours is a ReplayPolicy over
the recorded episode, the anchor's a langchain-core fake chat model returning the
same AIMessages with tool calls. Both tools are the same async function (ours an
``@tool``, the anchor's a langchain tool), so what is measured is the framework:
graph steps, state, checkpoints and, for ours, recording every step as a
trajectory. Ours runs through ``AgentRuntime.run`` (the path rollouts use, with its
Trajectory built at the end). Checkpointer settings are the same on both sides. The
anchor is ``langgraph.prebuilt.create_react_agent`` (deprecated in LangGraph 1.x in
favour of ``langchain.agents.create_agent``, which is not installed here; the graph
is the same model/tools loop).

Reported: median time per assistant turn (episode time / turns) over ``--reps``
episodes, alternating the two agents, and the ratio ours / anchor.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

from reasonloop.agents import AgentRuntime, build_react_agent
from reasonloop.policy.replay import ReplayPolicy
from reasonloop.tools.base import tool
from reasonloop.trajectory.schema import PolicyStep, ToolCall, Trajectory

__all__ = ["main"]

PROMPT = "Count to the end, one tool call at a time."


async def _echo(x: int) -> int:
    """Return x.

    Args:
        x: Any integer.
    """
    return x


def _recording(steps: int) -> Trajectory:
    turns = [
        PolicyStep(text="", tool_calls=[ToolCall(id=f"call_{i}", name="echo", arguments={"x": i})],
                   finish_reason="tool_calls")
        for i in range(steps)
    ]
    turns.append(PolicyStep(text="<answer>done</answer>", finish_reason="stop"))
    return Trajectory(task_id="bench", messages=[{"role": "user", "content": PROMPT}], steps=turns)


def _ours(steps: int, checkpointed: bool) -> Callable[[], Awaitable[Any]]:
    agent = build_react_agent(ReplayPolicy([_recording(steps)]), [tool(_echo, name="echo")], max_steps=steps + 2,
                              max_tool_calls=steps + 2)
    runtime = AgentRuntime(agent, checkpointer=None if checkpointed else False)

    async def once() -> Any:
        traj = await runtime.run(PROMPT, task_id="bench")
        assert traj.status == "finished" and len(traj.tool_steps()) == steps, traj.error
        return traj

    return once


def _anchor(steps: int, checkpointed: bool) -> Callable[[], Awaitable[Any]]:
    from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.tools import StructuredTool
    from langgraph.checkpoint.memory import InMemorySaver

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langgraph.prebuilt import create_react_agent

    class ToolCallingFake(FakeMessagesListChatModel):
        """Zero-latency async fake that accepts tools (the base class only has a sync path)."""

        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            return self

        async def _agenerate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
            return self._generate(messages, stop=stop, **kwargs)

    responses: list[Any] = [
        AIMessage(content="", tool_calls=[{"id": f"call_{i}", "name": "echo", "args": {"x": i}}]) for i in range(steps)
    ]
    responses.append(AIMessage(content="<answer>done</answer>"))
    model = ToolCallingFake(responses=responses)
    echo = StructuredTool.from_function(coroutine=_echo, name="echo", description="Return x.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = create_react_agent(model, [echo], checkpointer=InMemorySaver() if checkpointed else None)
    limit = 2 * steps + 5

    async def once() -> Any:
        config = {"configurable": {"thread_id": uuid.uuid4().hex}, "recursion_limit": limit}
        out = await graph.ainvoke({"messages": [("user", PROMPT)]}, config)
        assert len(out["messages"]) == 2 * steps + 2, len(out["messages"])
        return out

    return once


async def _measure(fns: dict[str, Callable[[], Awaitable[Any]]], reps: int, steps: int) -> dict[str, list[float]]:
    for fn in fns.values():  # warm-up: imports, caches, first compilations
        for _ in range(5):
            await fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            await fn()
            times[name].append((time.perf_counter() - t0) / (steps + 1))
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="tool-calling turns per episode")
    parser.add_argument("--reps", type=int, default=200, help="episodes per agent and setting")
    args = parser.parse_args(argv)
    print(f"{args.steps} tool turns + 1 answer per episode, {args.reps} episodes each; median per assistant turn")
    print(f"{'checkpointer':<14}{'reasonloop':>14}{'prebuilt':>14}{'ratio':>9}")
    for checkpointed in (True, False):
        fns = {"ours": _ours(args.steps, checkpointed), "anchor": _anchor(args.steps, checkpointed)}
        times = asyncio.run(_measure(fns, args.reps, args.steps))
        ours, anchor = statistics.median(times["ours"]), statistics.median(times["anchor"])
        label = "in-memory" if checkpointed else "none"
        print(f"{label:<14}{ours * 1e3:>11.3f} ms{anchor * 1e3:>11.3f} ms{ours / anchor:>8.2f}x")


if __name__ == "__main__":
    main()
