"""A benchmark report from the trajectories of a run: scores, tools, tokens, cost, latency.

The report is computed from the run store, never from what one process saw, so a run
resumed any number of times reports exactly what an uninterrupted run would; only
the fields under ``timing`` depend on when and how fast episodes ran.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from reasonloop.bench.metrics import mean_pass_at_k, percentile
from reasonloop.bench.task import Task
from reasonloop.trajectory.schema import Trajectory

__all__ = ["REPORT_VERSION", "Report", "TaskResult", "ToolStats", "build_report", "episode_correct", "litellm_cost"]

REPORT_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolStats(_Model):
    """Calls of one tool across the run."""

    calls: int = 0
    failures: int = 0
    """Calls whose status was not ``ok``."""
    by_status: dict[str, int] = Field(default_factory=dict)


class TaskResult(_Model):
    """One task's samples."""

    task_id: str
    samples: int
    correct: int
    mean_score: float
    statuses: dict[str, int] = Field(default_factory=dict)


class Report(_Model):
    """What ``report.json`` holds."""

    version: int = REPORT_VERSION
    suite: str
    model: str
    agent: str
    config: dict[str, Any]
    config_hash: str
    n_tasks: int
    samples: int
    episodes: int
    """Episodes recorded (``n_tasks * samples`` once the run is complete)."""
    complete: bool
    status_counts: dict[str, int]
    pass_at_1: float
    pass_at_k: dict[str, float]
    """``{"1": ..., "k": ...}`` for every k from 1 to ``samples`` (unbiased estimator)."""
    mean_score: float
    tools: dict[str, ToolStats]
    tokens: dict[str, int]
    cost_usd: float | None
    cost_source: str
    """``trajectories`` (the policy reported costs), ``litellm`` (cost map) or ``unknown``."""
    tasks: list[TaskResult]
    timing: dict[str, float] = Field(default_factory=dict)
    """Latency and throughput; the only fields that differ between equal runs."""

    def without_timing(self) -> dict[str, Any]:
        """The report as a dict, timing left out (what equal runs must share)."""
        return self.model_dump(exclude={"timing"})


def episode_correct(traj: Trajectory) -> bool:
    """An episode is correct when its verifier gave the full score."""
    return any(r.name == "correct" and r.value >= 1.0 for r in traj.rewards)


def _score(traj: Trajectory) -> float:
    return max((r.value for r in traj.rewards if r.name == "correct"), default=0.0)


def litellm_cost(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """Cost from LiteLLM's bundled cost map (offline), or None when the model is not in it."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm

        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
    except Exception:  # unknown model or no litellm: the cost is unknown, not zero
        return None
    return float(prompt_cost + completion_cost)


def _cost(model: str, trajs: Sequence[Trajectory], tokens: dict[str, int]) -> tuple[float | None, str]:
    reported = [t.usage.cost_usd for t in trajs if t.usage.cost_usd is not None]
    if reported:
        return float(sum(reported)), "trajectories"
    if tokens["prompt"] + tokens["completion"] == 0 or model == "expert" or model.startswith(("replay:", "hf:")):
        return None, "unknown"
    cost = litellm_cost(model, tokens["prompt"], tokens["completion"])
    return cost, "litellm" if cost is not None else "unknown"


def _tools(trajs: Iterable[Trajectory]) -> dict[str, ToolStats]:
    by_tool: dict[str, Counter[str]] = defaultdict(Counter)
    for traj in trajs:
        for step in traj.tool_steps():
            by_tool[step.call.name][step.result.status.value] += 1
    return {
        name: ToolStats(calls=sum(c.values()), failures=sum(v for k, v in c.items() if k != "ok"), by_status=dict(sorted(c.items())))
        for name, c in sorted(by_tool.items())
    }


def _task_results(tasks: Sequence[Task], trajs: Sequence[Trajectory]) -> list[TaskResult]:
    by_task: dict[str, list[Trajectory]] = defaultdict(list)
    for traj in trajs:
        by_task[traj.task_id].append(traj)
    out = []
    for task in tasks:
        mine = by_task.get(task.id, [])
        out.append(
            TaskResult(
                task_id=task.id,
                samples=len(mine),
                correct=sum(episode_correct(t) for t in mine),
                mean_score=sum(_score(t) for t in mine) / len(mine) if mine else 0.0,
                statuses=dict(sorted(Counter(t.status for t in mine).items())),
            )
        )
    return out


def build_report(
    *, config: dict[str, Any], config_hash: str, tasks: Sequence[Task], trajectories: Sequence[Trajectory],
    samples: int, wall_s: float = 0.0, episodes_run: int | None = None,
) -> Report:  # fmt: skip
    """Aggregate the run's trajectories (one per (task, sample)) into a :class:`Report`.

    ``wall_s`` and ``episodes_run`` describe this invocation (a resumed run runs fewer
    episodes than it reports); they only feed ``timing``.
    """
    known = {t.id for t in tasks}
    trajs = sorted((t for t in trajectories if t.task_id in known), key=lambda t: (t.task_id, t.sample))
    results = _task_results(tasks, trajs)
    counts = [(r.samples, r.correct) for r in results if r.samples]
    tokens = {"prompt": 0, "completion": 0, "cached": 0}
    for traj in trajs:
        usage = traj.usage
        tokens["prompt"] += usage.prompt_tokens
        tokens["completion"] += usage.completion_tokens
        tokens["cached"] += usage.cached_tokens
    model = str(config.get("model", ""))
    cost, source = _cost(model, trajs, tokens)
    latencies = [t.metrics.get("wall_s", 0.0) for t in trajs]
    ran = len(trajs) if episodes_run is None else episodes_run
    timing = {
        "latency_mean_s": sum(latencies) / len(latencies) if latencies else 0.0,
        "latency_p50_s": percentile(latencies, 50),
        "latency_p95_s": percentile(latencies, 95),
        "latency_max_s": max(latencies, default=0.0),
        "wall_s": wall_s,
        "episodes_run": float(ran),
        "episodes_per_s": ran / wall_s if wall_s > 0 else 0.0,
    }
    return Report(
        suite=str(config.get("suite", "")), model=model, agent=str(config.get("agent", "")),
        config=dict(config), config_hash=config_hash, n_tasks=len(tasks), samples=samples,
        episodes=len(trajs), complete=len(trajs) == len(tasks) * samples,
        status_counts=dict(sorted(Counter(t.status for t in trajs).items())),
        pass_at_1=mean_pass_at_k(counts, 1),
        pass_at_k={str(k): mean_pass_at_k(counts, k) for k in range(1, samples + 1)},
        mean_score=sum(_score(t) for t in trajs) / len(trajs) if trajs else 0.0,
        tools=_tools(trajs), tokens=tokens, cost_usd=cost, cost_source=source, tasks=results, timing=timing,
    )  # fmt: skip
