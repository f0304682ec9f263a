"""Training curves from a metrics JSONL file (matplotlib, imported when plotting)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reasonloop.training.metrics import read_metrics

__all__ = ["PANELS", "plot_metrics", "plot_runs"]

PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("reward", ("reward_mean",)),
    ("accuracy", ("accuracy",)),
    ("entropy before / after tool results", ("entropy_init", "entropy_after_tool")),
    ("tool calls per trajectory", ("tool_calls_per_traj",)),
    ("branches per prompt", ("branches_per_prompt",)),
    ("tokens sampled", ("sampled_tokens",)),
)
"""(title, metric keys) of each panel."""


def plot_runs(runs: Mapping[str, Sequence[Mapping[str, Any]]], out: str | Path) -> Path:
    """One figure with a panel per :data:`PANELS` entry, a line per run and metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for ax, (title, keys) in zip(axes.flat, PANELS, strict=True):
        for label, records in runs.items():
            for key in keys:
                points = [(r["step"], r[key]) for r in records if r.get(key) is not None]
                if points:
                    xs, ys = zip(*points, strict=True)
                    ax.plot(xs, ys, label=f"{label} {key}" if len(keys) > 1 or len(runs) > 1 else key)
        ax.set_title(title)
        ax.set_xlabel("step")
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_metrics(metrics_path: str | Path, out: str | Path) -> Path:
    """Plot one run's metrics JSONL to ``out`` (PNG)."""
    return plot_runs({"run": read_metrics(metrics_path)}, out)
