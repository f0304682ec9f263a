"""The live table a benchmark shows while it runs (rich), fed by episode events."""

from __future__ import annotations

import time
from collections import Counter
from types import TracebackType
from typing import Any

from reasonloop.bench.report import episode_correct
from reasonloop.trajectory.schema import Trajectory

__all__ = ["LiveTable"]


class LiveTable:
    """Counts finished episodes, correct answers, statuses, tool calls and tokens.

    Used as a context manager; draws nothing when ``enabled`` is False (the counts are
    kept either way).
    """

    def __init__(self, *, title: str, total: int, already_done: int = 0, enabled: bool = True) -> None:
        self.title = title
        self.total = total
        self.already_done = already_done
        self.enabled = enabled
        self.finished = 0
        self.correct = 0
        self.statuses: Counter[str] = Counter()
        self.tool_calls: Counter[str] = Counter()
        self.tool_failures = 0
        self.tokens = 0
        self.running_steps = 0
        self.started = time.perf_counter()
        self._live: Any = None

    def on_step(self, event: dict[str, Any]) -> None:
        """Runtime step callback: counts steps and tool calls as they stream."""
        self.running_steps += 1
        step = event.get("step") or {}
        if isinstance(step, dict) and step.get("kind") == "tool":
            self.tool_calls[str(step.get("call", {}).get("name", "?"))] += 1
            self.tool_failures += step.get("result", {}).get("status", "ok") != "ok"
        self._refresh()

    def on_episode(self, traj: Trajectory) -> None:
        """Called once per finished episode."""
        self.finished += 1
        self.correct += episode_correct(traj)
        self.statuses[traj.status] += 1
        usage = traj.usage
        self.tokens += usage.prompt_tokens + usage.completion_tokens
        self._refresh()

    def render(self) -> Any:
        """The rich table as it stands."""
        from rich.table import Table

        elapsed = time.perf_counter() - self.started
        done = self.already_done + self.finished
        table = Table(title=self.title, show_header=True)
        for col in ("episodes", "correct (this run)", "statuses", "tool calls (failed)", "tokens", "episodes/s"):
            table.add_column(col)
        calls = ", ".join(f"{k}: {v}" for k, v in sorted(self.tool_calls.items())) or "-"
        table.add_row(
            f"{done}/{self.total}",
            f"{self.correct}/{self.finished}" + (f" ({self.correct / self.finished:.1%})" if self.finished else ""),
            ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items())) or "-",
            f"{calls} ({self.tool_failures})",
            str(self.tokens),
            f"{self.finished / elapsed:.2f}" if elapsed > 0 else "-",
        )
        return table

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self.render())

    def __enter__(self) -> LiveTable:
        if self.enabled:
            from rich.live import Live

            self._live = Live(self.render(), refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.update(self.render())
            self._live.__exit__(exc_type, exc, tb)
            self._live = None
