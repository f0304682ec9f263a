"""Tools by name, for the CLI and for agents configured with strings.

Each entry is a factory that imports its back end only when called, so listing or
looking up tools stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from reasonloop.registry import Registry
from reasonloop.tools.base import Tool, Toolset

__all__ = ["TOOLS", "build_tools", "load_toolset"]

ToolFactory = Callable[..., Tool | list[Tool]]

TOOLS: Registry[ToolFactory] = Registry("tool")


def _calculator(**_: Any) -> Tool:
    from reasonloop.tools.calculator import calculator_tool

    return calculator_tool()


def _python(**options: Any) -> Tool:
    from reasonloop.tools.python import python_tool

    return python_tool(**options)


def _z3(**options: Any) -> Tool:
    """Model-written SMT-LIB runs inside the sandbox unless the caller says otherwise."""
    from reasonloop.tools.smt import smt_tool

    options.setdefault("sandbox", True)
    return smt_tool(**options)


def _lean(**options: Any) -> Tool:
    from reasonloop.tools.lean import LeanConfig, lean_tool

    return lean_tool(LeanConfig(**options) if options else None)


def _search(**options: Any) -> Tool:
    from reasonloop.tools.search import search_tool

    return search_tool(**options)


def _planner(**options: Any) -> list[Tool]:
    from reasonloop.planners.tools import planner_tools

    return list(planner_tools(**options))


def _plan_only(**options: Any) -> Tool:
    return next(t for t in _planner(**options) if t.name == "plan")


def _validate_only(**options: Any) -> Tool:
    return next(t for t in _planner(**options) if t.name == "validate_plan")


TOOLS.register("calculator", _calculator)
TOOLS.register("python", _python)
TOOLS.register("z3", _z3)
TOOLS.register("lean", _lean)
TOOLS.register("search", _search)
TOOLS.register("planner", _planner)
TOOLS.register("plan", _plan_only)
TOOLS.register("validate_plan", _validate_only)


def build_tools(names: Sequence[str], options: dict[str, dict[str, Any]] | None = None) -> list[Tool]:
    """Instantiate tools by name; ``options[name]`` are passed to that factory."""
    options = options or {}
    tools: list[Tool] = []
    for name in names:
        made = TOOLS.get(name)(**options.get(name, {}))
        tools.extend(made if isinstance(made, list) else [made])
    return tools


def load_toolset(spec: str | Sequence[str], options: dict[str, dict[str, Any]] | None = None) -> Toolset:
    """A Toolset from ``"python,z3"`` or a list of names (empty -> no tools)."""
    names = [n.strip() for n in spec.split(",")] if isinstance(spec, str) else list(spec)
    return Toolset(build_tools([n for n in names if n], options))
