"""Agent builders by name, for the CLI and configuration files."""

from __future__ import annotations

from collections.abc import Callable

from reasonloop.agents.react import Agent, build_react_agent
from reasonloop.registry import Registry

__all__ = ["AGENTS"]

AgentBuilder = Callable[..., Agent]
"""``builder(policy, tools, *, system_prompt, sampling, max_steps, ...) -> Agent``."""

AGENTS: Registry[AgentBuilder] = Registry("agent")
AGENTS.register("react", build_react_agent)
