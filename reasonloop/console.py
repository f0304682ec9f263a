"""Rich rendering of steps and trajectories for the CLI (live and after the fact)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

__all__ = ["print_step", "print_trajectory", "step_line", "trajectory_table"]

_STYLE = {"policy": "cyan", "tool": "green", "memory": "magenta", "note": "yellow"}


def _short(text: str, limit: int = 400) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + f" ... [{len(text) - limit} more chars]"


def step_line(step: dict[str, Any], index: int) -> Text:
    """One step (as a dict, the form LangGraph streams) as a compact line."""
    kind = step.get("kind", "?")
    head = Text(f"{index:>3} {kind:<6} ", style=_STYLE.get(kind, "white"))
    if kind == "policy":
        n = len(step.get("token_ids") or [])
        ent = step.get("entropies")
        detail = f"[{n} tok"
        if ent:
            detail += f", H̄={sum(ent) / len(ent):.2f} ({step.get('entropy_kind')})"
        detail += f", {step.get('finish_reason')}]"
        head.append(detail + " ", style="dim")
        head.append(_short(step.get("text", "")))
        for err in step.get("parse_errors") or []:
            head.append(f"\n      ! {err}", style="red")
    elif kind == "tool":
        call, result = step.get("call", {}), step.get("result", {})
        status = result.get("status", "?")
        head.append(f"{call.get('name')}({_short(str(call.get('arguments')), 200)}) -> ")
        head.append(f"[{status}] ", style="green" if status == "ok" else "red")
        head.append(_short(result.get("output") or result.get("error") or "", 300))
    elif kind == "memory":
        head.append(f"{step.get('op')} {'/'.join(step.get('namespace', []))} {step.get('query') or step.get('key') or ''}")
    else:
        head.append(_short(step.get("text", "")))
    return head


def print_step(console: Console, step: dict[str, Any], index: int) -> None:
    console.print(step_line(step, index))


def print_trajectory(console: Console, traj: Any) -> None:
    """Header, steps and outcome of a Trajectory."""
    meta = Table.grid(padding=(0, 2))
    meta.add_row("trajectory", traj.id)
    meta.add_row("run / task / sample", f"{traj.run_id} / {traj.task_id} / {traj.sample}")
    meta.add_row("agent / model", f"{traj.agent} / {traj.model}")
    if traj.parent_id:
        meta.add_row("branch of", f"{traj.parent_id} at step {traj.fork_step}")
    meta.add_row("status", traj.status)
    meta.add_row("tokens", f"{len(traj.token_ids())} ({sum(traj.loss_mask())} sampled)")
    console.print(Panel(meta, title="trajectory", expand=False))
    for i, step in enumerate(traj.steps):
        print_step(console, step.model_dump(mode="json"), i)
    console.print(Text(f"answer: {traj.final_answer!r}", style="bold"))
    for r in traj.rewards:
        console.print(f"reward {r.name} = {r.value:g} ({r.source}) {r.explanation or ''}")


def trajectory_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    if not rows:
        return table
    for col in rows[0]:
        table.add_column(str(col))
    for row in rows:
        table.add_row(*[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()])
    return table
