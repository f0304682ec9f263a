"""The planning engines reasonloop knows, as a typed registry (no unified-planning import)."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

from reasonloop.errors import UnknownNameError

__all__ = ["ENGINES", "EngineSpec", "PlannerMode", "get_engine", "java_options"]


class PlannerMode(StrEnum):
    """Whether the plan must be shortest (optimal) or any plan will do."""

    SATISFICING = "satisficing"
    OPTIMAL = "optimal"


@dataclass(frozen=True, kw_only=True)
class EngineSpec:
    """One engine reachable through unified-planning."""

    name: str
    """Our name (used on the command line and in results)."""
    satisficing: str
    """unified-planning engine name for satisficing planning."""
    optimal: str | None
    """unified-planning engine name for optimal planning, if any."""
    module: str
    """Python module of the unified-planning plugin."""
    needs_java: bool = False
    """The engine runs on the JVM."""
    honours_timeout: bool = True
    """False when the engine ignores unified-planning's timeout (the wall-clock kill still applies)."""

    def __post_init__(self) -> None:
        if not self.name or not self.satisficing:
            raise ValueError("EngineSpec needs a name and a satisficing engine")

    def up_name(self, mode: PlannerMode) -> str | None:
        """The unified-planning engine for ``mode`` (``None`` if this engine has no such mode)."""
        return self.optimal if mode is PlannerMode.OPTIMAL else self.satisficing

    def unavailable_reason(self) -> str | None:
        """Why the engine cannot run on this machine, or ``None`` if it can."""
        if self.needs_java and shutil.which("java") is None:
            return f"{self.name} needs Java, and no 'java' is on PATH; install a JRE (17+) or choose another planner"
        # find_spec, not import: the plugin imports unified-planning, which the caller's process avoids.
        if importlib.util.find_spec(self.module) is None:
            return f"{self.name} is not installed; pip install {self.module.replace('_', '-')}"
        return None


class _Registry(Mapping[str, EngineSpec]):
    """Immutable name -> spec mapping whose lookups name the valid choices on a miss."""

    def __init__(self, *specs: EngineSpec) -> None:
        self._specs = {s.name: s for s in specs}

    def __getitem__(self, name: str) -> EngineSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownNameError("planner", name, list(self._specs)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)


ENGINES: Mapping[str, EngineSpec] = _Registry(
    EngineSpec(
        name="fast-downward", satisficing="fast-downward", optimal="fast-downward-opt", module="up_fast_downward"
    ),
    EngineSpec(
        name="pyperplan", satisficing="pyperplan", optimal="pyperplan-opt", module="up_pyperplan", honours_timeout=False
    ),
    EngineSpec(name="enhsp", satisficing="enhsp", optimal="enhsp-opt", module="up_enhsp", needs_java=True),
)
"""Engines by our name; Fast Downward is the default (fastest in our measurements)."""


def get_engine(name: str) -> EngineSpec:
    """Look an engine up; an unknown name raises :class:`UnknownNameError` listing the valid ones."""
    return ENGINES[name]


def java_options(memory_mb: int) -> str:
    """JVM flags that fit a JVM under an ``RLIMIT_AS`` of ``memory_mb``.

    By default the JVM reserves about 1 GiB of class space and a large code cache up
    front, and fails to start under a 2 GiB address-space limit.
    """
    heap = max(64, memory_mb // 2)
    return f"-Xmx{heap}m -XX:CompressedClassSpaceSize=64m -XX:ReservedCodeCacheSize=64m -XX:+UseSerialGC"
