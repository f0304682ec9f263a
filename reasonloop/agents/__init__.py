"""Agents: LangGraph graph builders over a policy and tools, and the runtime that
runs them as recorded, forkable episodes."""

from __future__ import annotations

from reasonloop.agents.episode import AgentTask, Episode
from reasonloop.agents.react import Agent, build_react_agent
from reasonloop.agents.registry import AGENTS
from reasonloop.agents.runtime import AgentRuntime, StepCallback
from reasonloop.agents.state import AgentContext, AgentLimits, ReactState

__all__ = [
    "AGENTS",
    "Agent",
    "AgentContext",
    "AgentLimits",
    "AgentRuntime",
    "AgentTask",
    "Episode",
    "ReactState",
    "StepCallback",
    "build_react_agent",
]
