"""Memory in agent graphs: ``recall`` before the first policy call, ``reflect`` after
the end, and memory steps in the trajectory.

    agent = with_memory(build_react_agent(policy, tools), memory, sampling=sampling)

gives the ReAct graph with two more nodes::

    START -> recall -> policy <-> tools
                         \\--> reflect -> END

* ``recall`` searches the scope's lessons (and facts / episodes, if asked) for the
  task, records one :class:`MemoryStep` per kind searched, and, when something
  was found, appends one message with it to the context. Its forced token ids
  (the policy's ``extend``) are on the last of those steps (loss mask 0).
* ``reflect`` distills lessons from the episode's steps, credits the recalled
  lessons when ``outcome`` can tell success from failure, keeps an episode summary,
  and records what it wrote as a :class:`MemoryStep` (no tokens: nobody reads it).
* ``tools`` is the agent's own tools node; after it, every ``memory_search`` /
  ``memory_write`` call of the turn is also recorded as a :class:`MemoryStep`.

The node factories (:func:`make_recall_node`, :func:`make_reflect_node`) work on
any state with ``messages``, ``steps`` and ``token_ids``; :func:`with_memory` wires
them into a ReAct :class:`~reasonloop.agents.react.Agent`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from reasonloop.agents.nodes import (
    POLICY_NODE,
    TOOLS_NODE,
    ReactDeps,
    make_policy_node,
    make_tools_node,
    route_after_policy,
)
from reasonloop.agents.react import Agent
from reasonloop.agents.state import AgentContext, ReactState
from reasonloop.errors import ConfigError
from reasonloop.memory.kinds import KINDS
from reasonloop.memory.memory import Memory
from reasonloop.memory.store import Hit
from reasonloop.memory.tools import MEMORY_TOOL_NAMES
from reasonloop.policy.base import Context, Policy, SamplingParams, ToolSpec
from reasonloop.tools.base import Toolset
from reasonloop.trajectory.schema import MemoryStep, Trajectory

__all__ = ["RECALL_NODE", "REFLECT_NODE", "RecallConfig", "make_recall_node", "make_reflect_node", "with_memory"]

RECALL_NODE = "recall"
REFLECT_NODE = "reflect"

Outcome = Callable[[Mapping[str, Any]], bool | None]
NodeFn = Callable[[ReactState, Runtime[AgentContext]], Awaitable[dict[str, Any]]]
_TITLES = {"lessons": "Lessons from earlier episodes", "facts": "Known facts", "episodes": "Similar past episodes"}


@dataclass(frozen=True, kw_only=True)
class RecallConfig:
    """What the ``recall`` node looks up and how it shows it."""

    kinds: tuple[str, ...] = ("lessons",)
    """Memory kinds searched (``lessons``, ``facts``, ``episodes``)."""
    limit: int = 3
    """Most items recalled per kind."""
    min_score: float = 0.0
    """Items scoring below this are not shown (nor recorded)."""
    role: str = "user"
    """Role of the message that shows recalled memories."""

    def __post_init__(self) -> None:
        bad = [k for k in self.kinds if k not in KINDS or k == "notes"]
        if bad or not self.kinds:
            raise ConfigError(f"RecallConfig.kinds: expected some of lessons, facts, episodes; got {self.kinds!r}")
        if not 1 <= self.limit <= 50:
            raise ConfigError("RecallConfig.limit must be in 1..50")


def task_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """The task: the last user message of the initial prompt."""
    return next((str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), "")


def render_recall(found: Mapping[str, list[Hit]]) -> str:
    """The text the policy reads: one block per kind, best first."""
    blocks = []
    for kind, hits in found.items():
        if not hits:
            continue
        lines = [f"{_TITLES.get(kind, kind)}:"]
        for h in hits:
            extra = ""
            if kind == "lessons":
                extra = f" (usefulness {float(h.value.get('usefulness', 0.5)):.2f}, seen in {len(h.value.get('provenance', []))} episodes)"
            lines.append(f"- {h.text}{extra}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _emit(runtime: Runtime[AgentContext], node: str, index: int, step: dict[str, Any]) -> None:
    ctx = runtime.context
    runtime.stream_writer({"episode_id": getattr(ctx, "episode_id", ""), "node": node, "index": index, "step": step})


def make_recall_node(memory: Memory, *, policy: Policy, specs: Sequence[ToolSpec], config: RecallConfig) -> NodeFn:
    """The ``recall`` node (see the module docstring)."""

    async def recall(state: ReactState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
        query = task_text(state["messages"])
        started, t0 = time.time(), time.perf_counter()
        found = await asyncio.to_thread(memory.recall, query, kinds=config.kinds, limit=config.limit)
        found = {k: [h for h in hits if h.scores.total >= config.min_score] for k, hits in found.items()}
        duration = time.perf_counter() - t0
        steps = [
            MemoryStep(node=RECALL_NODE, started_at=started, duration_s=duration, op="search",
                       namespace=list(memory.namespace(kind)), query=query, items=[h.as_dict() for h in hits])
            for kind, hits in found.items()
        ]
        update: dict[str, Any] = {}
        text = render_recall(found)
        if text:
            message = {"role": config.role, "content": text}
            token_ids = state.get("token_ids")
            if token_ids is not None:
                forced = policy.extend(Context(messages=state["messages"], token_ids=token_ids), [message], specs)
                if forced:
                    steps[-1].token_ids = list(forced)
                    update["token_ids"] = token_ids + list(forced)
            update["messages"] = [*state["messages"], message]
        dumped = [s.model_dump(mode="json") for s in steps]
        for i, s in enumerate(dumped):
            _emit(runtime, RECALL_NODE, len(state["steps"]) + i, s)
        update["steps"] = dumped
        return update

    return recall


def make_reflect_node(memory: Memory, *, outcome: Outcome | None = None, episodes: bool = True) -> NodeFn:
    """The ``reflect`` node: learn from the episode that just ended.

    Args:
        memory: Where lessons and summaries go.
        outcome: ``state -> True/False/None``; without it (or when it returns
            ``None``) recalled lessons are not credited (the runtime's scorer runs
            after the graph: credit then with :meth:`Memory.learn` instead).
        episodes: Also keep an episode summary.
    """

    async def reflect(state: ReactState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
        ctx = runtime.context
        episode_id = getattr(ctx, "episode_id", "") or "episode"
        success = outcome(state) if outcome is not None else None
        started, t0 = time.time(), time.perf_counter()
        task = task_text(state["messages"])
        report = await asyncio.to_thread(
            memory.lessons.learn, task, state["steps"], trajectory_id=episode_id, success=success
        )
        items: list[dict[str, Any]] = [{"key": k, "change": "added"} for k in report.added]
        items += [{"key": k, "change": "merged"} for k in report.merged]
        items += [{"key": k, "change": "credited", "success": success} for k in report.credited]
        if episodes:
            traj = _partial_trajectory(state, episode_id)
            await asyncio.to_thread(memory.episodes.record, traj, success=success)
            items.append({"key": episode_id, "change": "episode", "namespace": list(memory.namespace("episodes"))})
        step = MemoryStep(node=REFLECT_NODE, started_at=started, duration_s=time.perf_counter() - t0, op="write",
                          namespace=list(memory.namespace("lessons")), items=items).model_dump(mode="json")
        _emit(runtime, REFLECT_NODE, len(state["steps"]), step)
        return {"steps": [step]}

    return reflect


def _partial_trajectory(state: Mapping[str, Any], episode_id: str) -> Trajectory:
    messages = [m for m in state["messages"] if m.get("role") in ("system", "user")][:2]
    return Trajectory.model_validate({
        "id": episode_id, "messages": messages, "steps": state["steps"], "final_answer": state.get("final_answer"),
        "status": state.get("status", "running") if state.get("status") != "running" else "error",
    })


def _memory_steps(update: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for step in update.get("steps", []):
        if step.get("kind") != "tool" or step["call"]["name"] not in MEMORY_TOOL_NAMES:
            continue
        op = ((step["result"].get("data") or {}).get("memory")) or None
        if op is None:
            continue
        out.append(MemoryStep(node=TOOLS_NODE, op=op["op"], namespace=op.get("namespace", []), key=op.get("key"),
                              query=op.get("query"), items=op.get("items", [])).model_dump(mode="json"))
    return out


def _with_memory_steps(tools_node: NodeFn) -> NodeFn:
    async def tools(state: ReactState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
        update = await tools_node(state, runtime)
        extra = _memory_steps(update)
        if extra:
            base = len(state["steps"]) + len(update.get("steps", []))
            for i, s in enumerate(extra):
                _emit(runtime, TOOLS_NODE, base + i, s)
            update["steps"] = [*update.get("steps", []), *extra]
        return update

    return tools


def with_memory(
    agent: Agent,
    memory: Memory,
    *,
    sampling: SamplingParams | None = None,
    recall: RecallConfig | None = None,
    reflect: bool = True,
    outcome: Outcome | None = None,
    offer_tools: bool = True,
    name: str | None = None,
) -> Agent:
    """The same ReAct agent with memory: recall, reflect, memory tools and steps.

    Args:
        agent: What :func:`~reasonloop.agents.react.build_react_agent` returned.
        memory: The memory (store + scope) to use.
        sampling: Sampling settings of the policy calls (an :class:`Agent` does not
            keep the ones it was built with; default ``SamplingParams()``).
        recall: What to recall before the first policy call (default lessons, 3).
        reflect: Add the ``reflect`` node at the end.
        outcome: Success test of a finished state, for crediting lessons in ``reflect``.
        offer_tools: Add ``memory_search`` and ``memory_write`` to the agent's tools.
        name: Name of the new agent (default: the old one's with ``+memory``).
    """
    tools = [agent.toolset[n] for n in agent.toolset.names]
    if offer_tools:
        tools += [t for t in memory.tools() if t.name not in agent.toolset]
    toolset = Toolset(tools)
    specs = tuple(toolset.specs())
    deps = ReactDeps(policy=agent.policy, specs=specs, sampling=sampling or SamplingParams(), limits=agent.limits)
    builder: StateGraph[Any, Any, Any, Any] = StateGraph(ReactState, context_schema=AgentContext)
    builder.add_node(RECALL_NODE, make_recall_node(memory, policy=agent.policy, specs=specs,  # type: ignore[call-overload, arg-type]
                                                   config=recall or RecallConfig()))
    builder.add_node(POLICY_NODE, make_policy_node(deps))  # type: ignore[call-overload, arg-type]
    builder.add_node(TOOLS_NODE, _with_memory_steps(make_tools_node(deps)))  # type: ignore[call-overload, arg-type]
    builder.add_edge(START, RECALL_NODE)
    builder.add_edge(RECALL_NODE, POLICY_NODE)
    end = REFLECT_NODE if reflect else END
    builder.add_conditional_edges(POLICY_NODE, route_after_policy, {TOOLS_NODE: TOOLS_NODE, END: end})
    builder.add_edge(TOOLS_NODE, POLICY_NODE)
    if reflect:
        builder.add_node(REFLECT_NODE, make_reflect_node(memory, outcome=outcome))  # type: ignore[call-overload, arg-type]
        builder.add_edge(REFLECT_NODE, END)
    agent_name = name or f"{agent.name}+memory"
    compiled = builder.compile(checkpointer=agent.graph.checkpointer, name=agent_name)
    return Agent(
        name=agent_name,
        graph=compiled.with_config(recursion_limit=agent.limits.recursion_limit),  # type: ignore[arg-type]
        builder=builder,
        policy=agent.policy,
        toolset=toolset,
        specs=specs,
        system_prompt=agent.system_prompt,
        limits=agent.limits,
    )
