"""The ReAct agent: a policy that thinks, calls tools, reads their results, answers.

    agent = build_react_agent(policy, [add, multiply], max_steps=8)
    runtime = AgentRuntime(agent)
    traj = await runtime.run("What is 6 * 7?", task_id="q1")

The graph is two small nodes (see :mod:`reasonloop.agents.nodes`)::

    START -> policy --(tool calls, parse errors, cut/empty/failed turn)--> tools -> policy
                    \\--(answered, or out of budget)--> END
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from reasonloop.agents.nodes import (
    POLICY_NODE,
    TOOLS_NODE,
    ReactDeps,
    make_policy_node,
    make_tools_node,
    route_after_policy,
)
from reasonloop.agents.state import AgentContext, AgentLimits, ReactState, initial_state
from reasonloop.policy.base import Policy, SamplingParams, ToolSpec
from reasonloop.tools.base import Tool, Toolset, as_toolset

__all__ = ["Agent", "build_react_agent"]


@dataclass(kw_only=True, eq=False)
class Agent:
    """A compiled agent graph together with what it was built from.

    ``graph`` is the compiled LangGraph ``StateGraph`` (recursion limit already set
    from the step budget); ``Agent`` forwards unknown attributes to it, so
    ``agent.ainvoke(...)``, ``agent.astream(...)`` and ``agent.get_graph()`` work as on
    the compiled graph. The runtime needs the rest: the policy and tools to open
    per-episode sessions and prompt ids, and the builder to compile the same graph
    with its own checkpointer.
    """

    name: str
    """Agent name, recorded in trajectories."""
    graph: CompiledStateGraph[Any, Any, Any, Any]
    """The compiled graph (with the checkpointer given to the builder, if any)."""
    builder: StateGraph[Any, Any, Any, Any]
    """The uncompiled graph, to compile with another checkpointer."""
    policy: Policy
    """Writes the assistant turns."""
    toolset: Toolset
    """The tools offered; ``toolset.open()`` gives an episode's session."""
    specs: tuple[ToolSpec, ...]
    """The tools' specs, as offered to the policy."""
    system_prompt: str | None
    """Prepended as a system message to prompts given as text."""
    limits: AgentLimits
    """Episode budgets."""

    @property
    def recursion_limit(self) -> int:
        """LangGraph recursion limit derived from ``limits.max_steps``."""
        return self.limits.recursion_limit

    def compile(self, checkpointer: BaseCheckpointSaver[Any] | None) -> CompiledStateGraph[Any, Any, Any, Any]:
        """The same graph compiled with ``checkpointer``, recursion limit set."""
        return _compile(self.builder, self.name, self.limits, checkpointer)

    def messages(self, prompt: str | Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Initial chat messages: a text prompt becomes [system?, user]; messages are copied."""
        if isinstance(prompt, str):
            out: list[dict[str, Any]] = []
            if self.system_prompt:
                out.append({"role": "system", "content": self.system_prompt})
            out.append({"role": "user", "content": prompt})
            return out
        return [dict(m) for m in prompt]

    def initial_state(self, messages: list[dict[str, Any]]) -> ReactState:
        """State before the first policy call; the policy tokenises the prompt once here."""
        ids = self.policy.start(messages, self.specs)
        return initial_state(messages, None if ids is None else list(ids))

    def context(self, *, episode_id: str = "", seed: int | None = None) -> AgentContext:
        """A runtime context with a fresh tool session (the caller closes ``.session``)."""
        return AgentContext(session=self.toolset.open(episode_id), episode_id=episode_id, seed=seed)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "graph":
            raise AttributeError(name)
        return getattr(self.graph, name)


def build_react_agent(
    policy: Policy,
    tools: Toolset | Sequence[Tool] | None,
    *,
    system_prompt: str | None = None,
    sampling: SamplingParams | None = None,
    max_steps: int = 16,
    max_tool_calls: int = 32,
    max_errors: int = 3,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    name: str = "react",
) -> Agent:
    """Build and compile the ReAct graph.

    Args:
        policy: Writes the assistant turns (API model, local model, replay).
        tools: The tools offered to the policy.
        system_prompt: System message put before text prompts.
        sampling: Sampling settings of every policy call (default ``SamplingParams()``).
        max_steps: Most policy calls per episode; the LangGraph ``recursion_limit`` is
            set from it (``2 * max_steps + 3``), never left at LangGraph's default.
        max_tool_calls: Most tool calls per episode.
        max_errors: Most consecutive failed policy calls before the episode ends.
        checkpointer: Checkpointer of ``agent.graph`` (an :class:`AgentRuntime` compiles
            its own copy with the checkpointer it is given).
        name: Agent name recorded in trajectories.

    Returns:
        The :class:`Agent`: the compiled graph plus the policy, tools and limits.
        Invoking ``agent.graph`` directly needs ``context=agent.context(...)``.
    """
    toolset = as_toolset(tools)
    limits = AgentLimits(max_steps=max_steps, max_tool_calls=max_tool_calls, max_errors=max_errors)
    specs = tuple(toolset.specs())
    deps = ReactDeps(policy=policy, specs=specs, sampling=sampling or SamplingParams(), limits=limits)
    builder: StateGraph[Any, Any, Any, Any] = StateGraph(ReactState, context_schema=AgentContext)
    builder.add_node(POLICY_NODE, make_policy_node(deps))  # type: ignore[call-overload, arg-type]
    builder.add_node(TOOLS_NODE, make_tools_node(deps))  # type: ignore[call-overload, arg-type]
    builder.add_edge(START, POLICY_NODE)
    builder.add_conditional_edges(POLICY_NODE, route_after_policy, [TOOLS_NODE, END])
    builder.add_edge(TOOLS_NODE, POLICY_NODE)
    return Agent(
        name=name,
        graph=_compile(builder, name, limits, checkpointer),
        builder=builder,
        policy=policy,
        toolset=toolset,
        specs=specs,
        system_prompt=system_prompt,
        limits=limits,
    )


def _compile(
    builder: StateGraph[Any, Any, Any, Any],
    name: str,
    limits: AgentLimits,
    checkpointer: BaseCheckpointSaver[Any] | None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    compiled = builder.compile(checkpointer=checkpointer, name=name)
    return compiled.with_config(recursion_limit=limits.recursion_limit)  # type: ignore[return-value]
