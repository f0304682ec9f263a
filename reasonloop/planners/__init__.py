"""PDDL planning: parse and check, solve in limited processes, validate with explanations,
render plans to and from natural language, generate seeded instances, and expose
``plan``/``validate_plan`` as tools.

Importing this package loads nothing heavy: unified-planning is imported inside the
planner processes and inside the functions that need it.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> module that defines it; loaded on first access.
_EXPORTS: dict[str, str] = {
    "ENGINES": "reasonloop.planners.engines",
    "EngineSpec": "reasonloop.planners.engines",
    "PlannerMode": "reasonloop.planners.engines",
    "GENERATORS": "reasonloop.planners.generators",
    "PlanningInstance": "reasonloop.planners.generators",
    "generate": "reasonloop.planners.generators",
    "CheckedTask": "reasonloop.planners.parse",
    "ParsedTask": "reasonloop.planners.parse",
    "check_task": "reasonloop.planners.parse",
    "parse_task": "reasonloop.planners.parse",
    "ActionCall": "reasonloop.planners.render",
    "read_plan": "reasonloop.planners.render",
    "render_plan": "reasonloop.planners.render",
    "render_state": "reasonloop.planners.render",
    "PddlIssue": "reasonloop.planners.result",
    "PlanResult": "reasonloop.planners.result",
    "PlanStatus": "reasonloop.planners.result",
    "Timings": "reasonloop.planners.result",
    "ValidationReport": "reasonloop.planners.result",
    "ValidationStatus": "reasonloop.planners.result",
    "ForkServerRunner": "reasonloop.planners.runner",
    "JobRunner": "reasonloop.planners.runner",
    "Limits": "reasonloop.planners.runner",
    "SubprocessRunner": "reasonloop.planners.runner",
    "Planner": "reasonloop.planners.solve",
    "PlannerConfig": "reasonloop.planners.solve",
    "solve_task": "reasonloop.planners.solve",
    "PlannerSessions": "reasonloop.planners.tools",
    "plan": "reasonloop.planners.tools",
    "planner_tools": "reasonloop.planners.tools",
    "validate_plan": "reasonloop.planners.tools",
    "validate_in_process": "reasonloop.planners.validate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'reasonloop.planners' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
