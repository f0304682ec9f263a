"""Agents: LangGraph graph builders over a policy and tools, and the runtime that
runs them as recorded, forkable episodes."""

from __future__ import annotations

from reasonloop.agents.episode import AgentTask, Episode
from reasonloop.agents.memory import RecallConfig, with_memory
from reasonloop.agents.pal import build_pal_agent
from reasonloop.agents.planning import build_llm_p_agent, build_plan_verify_agent
from reasonloop.agents.react import Agent, build_react_agent
from reasonloop.agents.refine import CheckVerdict, RefineLoop, build_refine_agent
from reasonloop.agents.registry import AGENTS
from reasonloop.agents.runtime import AgentRuntime, StepCallback
from reasonloop.agents.search import build_search_agent
from reasonloop.agents.state import AgentContext, AgentLimits, ReactState
from reasonloop.agents.verify import CallableChecker, ToolChecker, build_verify_refine_agent

__all__ = [
    "AGENTS",
    "CallableChecker",
    "CheckVerdict",
    "RecallConfig",
    "RefineLoop",
    "ToolChecker",
    "build_llm_p_agent",
    "build_pal_agent",
    "build_plan_verify_agent",
    "build_refine_agent",
    "build_search_agent",
    "build_verify_refine_agent",
    "with_memory",
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
