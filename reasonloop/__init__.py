"""reasonloop: agents that reason with tools, recorded losslessly, trained with agentic RL."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> module that defines it; loaded on first access so `import reasonloop` stays light.
_EXPORTS: dict[str, str] = {
    "Agent": "reasonloop.agents",
    "AgentRuntime": "reasonloop.agents",
    "AgentTask": "reasonloop.agents",
    "Episode": "reasonloop.agents",
    "build_react_agent": "reasonloop.agents",
    "HFPolicy": "reasonloop.policy.hf",
    "HFPolicyConfig": "reasonloop.policy.hf",
    "LiteLLMPolicy": "reasonloop.policy.litellm",
    "ReplayPolicy": "reasonloop.policy.replay",
    "load_policy": "reasonloop.policy.registry",
    "load_toolset": "reasonloop.tools.registry",
    "RunStore": "reasonloop.trajectory.store",
    "RunSummary": "reasonloop.trajectory.store",
    "export_jsonl": "reasonloop.trajectory.export",
    "export_parquet": "reasonloop.trajectory.export",
    "import_jsonl": "reasonloop.trajectory.export",
    "import_parquet": "reasonloop.trajectory.export",
    "TrainingSequence": "reasonloop.trajectory.tensors",
    "trajectory_to_tensors": "reasonloop.trajectory.tensors",
    "Completion": "reasonloop.policy.base",
    "Context": "reasonloop.policy.base",
    "Policy": "reasonloop.policy.base",
    "SamplingParams": "reasonloop.policy.base",
    "ToolSpec": "reasonloop.policy.base",
    "Tool": "reasonloop.tools.base",
    "ToolContext": "reasonloop.tools.base",
    "Toolset": "reasonloop.tools.base",
    "tool": "reasonloop.tools.base",
    "MemoryStep": "reasonloop.trajectory.schema",
    "NoteStep": "reasonloop.trajectory.schema",
    "PolicyStep": "reasonloop.trajectory.schema",
    "Reward": "reasonloop.trajectory.schema",
    "ToolCall": "reasonloop.trajectory.schema",
    "ToolResult": "reasonloop.trajectory.schema",
    "ToolStatus": "reasonloop.trajectory.schema",
    "ToolStep": "reasonloop.trajectory.schema",
    "Trajectory": "reasonloop.trajectory.schema",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'reasonloop' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
