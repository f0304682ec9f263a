"""The suite registry: a name -> how to generate its tasks and which tools they need.

    suite = SUITES.get("arith-chain")
    tasks = suite.generate(50, seed=0, difficulty=2)
    toolset = suite.toolset(tasks, cache_dir=Path(".cache/bench"))

Generators are pure Python (seeded, any size) and import no tool back end; the
tools are built only by :meth:`Suite.toolset`. Suites whose tools need prepared
data (the ``lookup`` corpus and its index) build it there, into ``cache_dir``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonloop.bench.task import Task
from reasonloop.errors import ConfigError
from reasonloop.registry import Registry

__all__ = ["DEFAULT_SYSTEM_PROMPT", "SUITES", "Generator", "Suite", "ToolOptions"]

Generator = Callable[..., list[Task]]
"""``generate(n, *, seed, difficulty) -> list[Task]`` (deterministic)."""

ToolOptions = Callable[[Sequence[Task], Path], dict[str, dict[str, Any]]]
"""``options(tasks, cache_dir)`` -> per-tool factory options (may build files in ``cache_dir``)."""

DEFAULT_SYSTEM_PROMPT = (
    "You solve tasks with the tools you are given. Call a tool whenever it helps, read its result, "
    "and finish with the final answer inside <answer></answer> tags."
)


def _no_options(tasks: Sequence[Task], cache_dir: Path) -> dict[str, dict[str, Any]]:
    return {}


@dataclass(frozen=True, kw_only=True)
class Suite:
    """A generated task suite."""

    name: str
    """Registry name (also ``Task.suite`` of its tasks)."""
    generate_fn: Generator
    """Makes the tasks; see :data:`Generator`."""
    tools: tuple[str, ...]
    """Tool names (see :data:`reasonloop.tools.registry.TOOLS`) its tasks are offered."""
    difficulties: tuple[int, ...] = (1, 2, 3)
    """Valid ``difficulty`` values."""
    default_difficulty: int = 2
    """Difficulty used when none is given."""
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    """System prompt the runner gives the agent (the expert recordings start from it)."""
    tool_options: ToolOptions = field(default=_no_options)
    """Prepares tool data and returns factory options."""
    description: str = ""
    """One line for listings."""

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("suite name must be non-empty")
        if self.default_difficulty not in self.difficulties:
            raise ConfigError(f"suite {self.name}: default_difficulty not in {self.difficulties}")

    def generate(self, n: int, *, seed: int = 0, difficulty: int | None = None) -> list[Task]:
        """``n`` tasks; the same arguments always give the same tasks."""
        if n < 0:
            raise ConfigError(f"n must be >= 0, got {n}")
        level = self.default_difficulty if difficulty is None else difficulty
        if level not in self.difficulties:
            raise ConfigError(f"suite {self.name}: difficulty must be one of {list(self.difficulties)}, got {level}")
        return self.generate_fn(n, seed=seed, difficulty=level)

    def toolset(self, tasks: Sequence[Task], *, cache_dir: str | Path) -> Any:
        """The :class:`~reasonloop.tools.base.Toolset` for ``tasks`` (builds tool data if needed)."""
        from reasonloop.tools.registry import load_toolset

        return load_toolset(list(self.tools), self.tool_options(tasks, Path(cache_dir)))


SUITES: Registry[Suite] = Registry("suite")
"""Suites by name; filled by :mod:`reasonloop.bench.catalog`."""
