"""Side-by-side comparison of benchmark runs, with bootstrap confidence intervals.

    table = compare(["runs/a", "runs/b"])
    print(table.to_markdown())

Each run's pass@1 gets a percentile bootstrap interval over its tasks; every run after
the first also gets the paired difference to the first (over the tasks both ran) with
its interval, and the tasks whose per-task pass rate differs. Bootstraps are seeded:
the same reports always give the same table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from reasonloop.bench.metrics import bootstrap_ci, paired_bootstrap_ci
from reasonloop.bench.report import Report
from reasonloop.errors import ConfigError

__all__ = ["Comparison", "RunRow", "TaskDiff", "compare", "load_report"]


@dataclass(frozen=True, kw_only=True)
class TaskDiff:
    """A task whose pass rate differs from the baseline's."""

    task_id: str
    baseline: float
    other: float


@dataclass(frozen=True, kw_only=True)
class RunRow:
    """One run in the comparison."""

    name: str
    report: Report
    pass_at_1: tuple[float, float, float]
    """(mean, low, high) over tasks."""
    diff: tuple[float, float, float] | None = None
    """(mean, low, high) of this run minus the baseline, paired over shared tasks (None for the baseline)."""
    shared_tasks: int = 0
    task_diffs: list[TaskDiff] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """The rows of a comparison; render with :meth:`to_markdown` or :meth:`to_rich`."""

    rows: list[RunRow]
    level: float

    def _cells(self, row: RunRow) -> list[str]:
        r = row.report
        m, lo, hi = row.pass_at_1
        diff = "baseline" if row.diff is None else f"{row.diff[0]:+.3f} [{row.diff[1]:+.3f}, {row.diff[2]:+.3f}]"
        k = max(r.pass_at_k, key=int) if r.pass_at_k else "1"
        cost = "?" if r.cost_usd is None else f"{r.cost_usd:.4f}"
        tools = sum(s.calls for s in r.tools.values())
        return [row.name, r.suite, r.model, f"{r.n_tasks}x{r.samples}", f"{m:.3f} [{lo:.3f}, {hi:.3f}]",
                f"{r.pass_at_k.get(k, 0.0):.3f} (k={k})", diff, str(tools), str(r.tokens.get("completion", 0)), cost]  # fmt: skip

    _HEAD: ClassVar[list[str]] = ["run", "suite", "model", "tasks", "pass@1 [CI]", "pass@k", "diff vs first [CI]", "tool calls",
             "completion tokens", "cost $"]  # fmt: skip

    def to_markdown(self, *, max_task_diffs: int = 10) -> str:
        """A Markdown table, then the per-task differences of each run."""
        lines = ["| " + " | ".join(self._HEAD) + " |", "|" + "---|" * len(self._HEAD)]
        lines += ["| " + " | ".join(self._cells(row)) + " |" for row in self.rows]
        for row in self.rows[1:]:
            lines += ["", f"{row.name}: {len(row.task_diffs)} of {row.shared_tasks} shared tasks differ"]
            lines += [f"- {d.task_id}: {d.baseline:.2f} -> {d.other:.2f}" for d in row.task_diffs[:max_task_diffs]]
        return "\n".join(lines) + "\n"

    def to_rich(self) -> Any:
        """The table as a :class:`rich.table.Table`."""
        from rich.table import Table

        table = Table(title=f"pass@1 with {self.level:.0%} bootstrap intervals")
        for head in self._HEAD:
            table.add_column(head)
        for row in self.rows:
            table.add_row(*self._cells(row))
        return table


def load_report(run_dir: str | Path) -> Report:
    """The ``report.json`` of a benchmark directory."""
    path = Path(run_dir) / "report.json"
    try:
        return Report.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ConfigError(f"{run_dir}: no report.json (run the benchmark first)") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: not a benchmark report ({exc})") from exc


def _rates(report: Report) -> dict[str, float]:
    return {t.task_id: t.correct / t.samples for t in report.tasks if t.samples}


def compare(dirs: Sequence[str | Path], *, seed: int = 0, n_boot: int = 2000, level: float = 0.95) -> Comparison:
    """Compare benchmark directories; the first is the baseline.

    Args:
        dirs: Benchmark output directories (each with a ``report.json``).
        seed: Seed of the bootstrap resampling.
        n_boot: Bootstrap resamples.
        level: Confidence level of the intervals.
    """
    if not dirs:
        raise ConfigError("compare needs at least one directory")
    reports = [load_report(d) for d in dirs]
    base = _rates(reports[0])
    rows = []
    for i, (d, report) in enumerate(zip(dirs, reports, strict=True)):
        rates = _rates(report)
        ci = bootstrap_ci(list(rates.values()), seed=seed, n_boot=n_boot, level=level)
        if i == 0:
            rows.append(RunRow(name=str(d), report=report, pass_at_1=ci, shared_tasks=len(rates)))
            continue
        shared = [t for t in base if t in rates]
        diff = paired_bootstrap_ci([base[t] for t in shared], [rates[t] for t in shared], seed=seed, n_boot=n_boot, level=level)
        diffs = [TaskDiff(task_id=t, baseline=base[t], other=rates[t]) for t in shared if base[t] != rates[t]]
        diffs.sort(key=lambda x: -abs(x.other - x.baseline))
        rows.append(RunRow(name=str(d), report=report, pass_at_1=ci, diff=diff, shared_tasks=len(shared), task_diffs=diffs))
    return Comparison(rows=rows, level=level)
