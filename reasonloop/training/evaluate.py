"""Scoring a policy on held-out tasks through the same agent the trainer rolls out."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from reasonloop.agents import AgentRuntime
from reasonloop.agents.react import Agent
from reasonloop.bench.task import Task
from reasonloop.training.rewards import RewardStack
from reasonloop.trajectory.schema import Trajectory

__all__ = ["evaluate_agent"]


def evaluate_agent(agent: Agent, tasks: Sequence[Task], reward: RewardStack, *, samples: int = 1,
                   seed: int = 12345) -> tuple[dict[str, float], list[Trajectory]]:
    """Run ``samples`` seeded episodes per task; return the mean reward, accuracy,
    well-formed rate and tool calls per trajectory, and the scored trajectories."""
    by_id = {t.id: t for t in tasks}

    async def go() -> list[Trajectory]:
        async with AgentRuntime(agent, run_id="eval") as runtime:
            jobs = [{"task_id": t.id, "prompt": t.prompt, "seed": seed + 1000 * i} for i, t in enumerate(tasks)]
            return await runtime.run_many(jobs, samples=samples)

    trajs = asyncio.run(go())
    for traj in trajs:
        traj.rewards = reward.score(traj, by_id[traj.task_id])
    n = max(1, len(trajs))
    metrics = {
        "reward_mean": sum(t.reward for t in trajs) / n,
        "accuracy": sum(reward.is_correct(t.rewards) for t in trajs) / n,
        "format_ok": sum(all(r.value >= 0 for r in t.rewards if r.name == "format") for t in trajs) / n,
        "tool_calls_per_traj": sum(len(t.tool_steps()) for t in trajs) / n,
    }
    return metrics, trajs
