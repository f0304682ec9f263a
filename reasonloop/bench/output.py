"""Files a finished benchmark writes: ``report.json``, ``summary.md`` and PNG plots."""

from __future__ import annotations

import json
import os
from pathlib import Path

from reasonloop.bench.report import Report

__all__ = ["markdown_summary", "write_outputs", "write_plots"]


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _fmt_cost(report: Report) -> str:
    return "unknown" if report.cost_usd is None else f"${report.cost_usd:.4f} ({report.cost_source})"


def markdown_summary(report: Report) -> str:
    """A short Markdown page: headline numbers, tools, and the tasks that failed most."""
    t = report.timing
    lines = [
        f"# {report.suite}: {report.model} ({report.agent})",
        "",
        "| metric | value |",
        "|---|---|",
        f"| tasks x samples | {report.n_tasks} x {report.samples} ({report.episodes} episodes"
        f"{'' if report.complete else ', incomplete'}) |",
        *(f"| pass@{k} | {v:.3f} |" for k, v in report.pass_at_k.items()),
        f"| mean score | {report.mean_score:.3f} |",
        f"| statuses | {', '.join(f'{k}: {v}' for k, v in report.status_counts.items())} |",
        f"| tokens (prompt / completion) | {report.tokens['prompt']} / {report.tokens['completion']} |",
        f"| cost | {_fmt_cost(report)} |",
        f"| latency mean / p50 / p95 | {t.get('latency_mean_s', 0):.2f} / {t.get('latency_p50_s', 0):.2f} / "
        f"{t.get('latency_p95_s', 0):.2f} s |",
        f"| throughput | {t.get('episodes_per_s', 0):.2f} episodes/s |",
        "",
        "## Tools",
        "",
        "| tool | calls | failures | statuses |",
        "|---|---|---|---|",
        *(f"| {name} | {s.calls} | {s.failures} | {', '.join(f'{k}: {v}' for k, v in s.by_status.items())} |"
          for name, s in report.tools.items()),
    ]
    failing = sorted((r for r in report.tasks if r.samples and r.correct < r.samples), key=lambda r: r.correct / r.samples)
    if failing:
        lines += ["", "## Failed tasks", "", "| task | correct | statuses |", "|---|---|---|"]
        lines += [f"| {r.task_id} | {r.correct}/{r.samples} | {r.statuses} |" for r in failing[:20]]
    return "\n".join(lines) + "\n"


def write_plots(report: Report, out_dir: Path, latencies: list[float]) -> list[Path]:
    """PNG plots (score per task, tool calls, latency); none when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    fig, ax = plt.subplots(figsize=(7, 3.5))
    rates = sorted((r.correct / r.samples for r in report.tasks if r.samples), reverse=True)
    ax.bar(range(len(rates)), rates, width=1.0)
    ax.set(xlabel="task (sorted)", ylabel="fraction correct", title=f"{report.suite}: pass@1 = {report.pass_at_1:.3f}")
    written.append(_save(fig, out_dir / "scores.png"))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    names = list(report.tools)
    ax.bar(names, [report.tools[n].calls for n in names], label="calls")
    ax.bar(names, [report.tools[n].failures for n in names], label="failures")
    ax.set(ylabel="calls", title="tool calls")
    ax.legend()
    written.append(_save(fig, out_dir / "tools.png"))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(latencies or [0.0], bins=30)
    ax.set(xlabel="episode latency (s)", ylabel="episodes", title="latency")
    written.append(_save(fig, out_dir / "latency.png"))
    plt.close("all")
    return written


def _save(fig: object, path: Path) -> Path:
    fig.tight_layout()  # type: ignore[attr-defined]
    fig.savefig(path, dpi=100)  # type: ignore[attr-defined]
    return path


def write_outputs(report: Report, out_dir: Path, *, latencies: list[float], plots: bool = True) -> list[Path]:
    """Write ``report.json``, ``summary.md`` (and the plots); returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(out_dir / "report.json", json.dumps(report.model_dump(mode="json"), indent=2) + "\n")
    _atomic_write(out_dir / "summary.md", markdown_summary(report))
    written = [out_dir / "report.json", out_dir / "summary.md"]
    if plots:
        written += write_plots(report, out_dir, latencies)
    return written
