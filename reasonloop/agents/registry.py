"""Agent builders by name, for the CLI and configuration files."""

from __future__ import annotations

from collections.abc import Callable

from reasonloop.agents.pal import pal_agent_from_toolset
from reasonloop.agents.planning import llm_p_agent_from_toolset, plan_verify_agent_from_toolset
from reasonloop.agents.react import Agent, build_react_agent
from reasonloop.agents.search import search_agent_from_toolset
from reasonloop.agents.verify import verify_refine_agent_from_toolset
from reasonloop.registry import Registry

__all__ = ["AGENTS"]

AgentBuilder = Callable[..., Agent]
"""``builder(policy, tools, *, system_prompt, sampling, max_steps, ...) -> Agent``."""

AGENTS: Registry[AgentBuilder] = Registry("agent")
AGENTS.register("react", build_react_agent)
AGENTS.register("pal", pal_agent_from_toolset)
AGENTS.register("verify_refine", verify_refine_agent_from_toolset)
AGENTS.register("search", search_agent_from_toolset)
AGENTS.register("llm_p", llm_p_agent_from_toolset)
AGENTS.register("plan_verify", plan_verify_agent_from_toolset)
