"""Evaluation and a short ARPO phase for the tiny policy, on the suites' real tools and verifiers.

    accuracy, trajs = evaluate_suites(policy, tasks_by_suite, tools=True, cache_dir=Path(".cache"))
    history = arpo_finetune(model, tokenizer, tasks_by_suite, steps=4, cache_dir=Path(".cache"))

The ARPO phase uses the trainer's public pieces (the :class:`HFEngine` over the model
being trained, :func:`rollout_group` in ``arpo`` mode, the advantage estimator, the
row builder and :func:`policy_update`); what it adds is one agent per suite, because
every suite brings its own tools and verifier.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from reasonloop.bench.suites import SUITES
from reasonloop.bench.task import Task
from reasonloop.policy.base import SamplingParams
from reasonloop.trajectory.schema import Trajectory

__all__ = ["MAX_TOKENS", "accuracy", "arpo_finetune", "evaluate_suites", "suite_agent"]

MAX_TOKENS: Mapping[str, int] = {
    "arith": 48, "arith-py": 48, "arith-chain": 40, "lookup": 64, "logic": 480, "planning": 720,
}
"""Tokens one turn may sample, per suite (the experts' longest turn, with room: a
tokenizer with letter-by-letter names spends a token per letter of a name)."""
_MAX_STEPS = 4
_MAX_STEPS_NO_TOOLS = 2
"""Without tools one answer and one retry: the model is never shown a tool result to read."""


def suite_agent(policy: Any, suite: str, tasks: Sequence[Task], *, tools: bool, cache_dir: Path,
                temperature: float = 0.0) -> Any:
    """The ReAct agent for ``suite`` (its tools, or none), with the tiny model's prompt."""
    from reasonloop.agents import build_react_agent
    from reasonloop.recipes.tiny import SYSTEM_PROMPT

    toolset = SUITES.get(suite).toolset(tasks, cache_dir=cache_dir) if tools else None
    sampling = SamplingParams(temperature=temperature, max_tokens=MAX_TOKENS.get(suite, 64))
    return build_react_agent(policy, toolset, system_prompt=SYSTEM_PROMPT, sampling=sampling,
                             max_steps=_MAX_STEPS if tools else _MAX_STEPS_NO_TOOLS)


def _scorer(tasks: Sequence[Task]) -> Callable[[Trajectory], list[Any]]:
    index = {t.id: t for t in tasks}

    def score(traj: Trajectory) -> list[Any]:
        task = index[traj.task_id]
        return [task.verify(traj.final_answer, traj).as_reward(f"verifier:{task.verifier}")]

    return score


async def _run_suite(agent: Any, tasks: Sequence[Task], *, store: Any, run_id: str,
                     on_step: Callable[[dict[str, Any]], None] | None) -> list[Trajectory]:
    from reasonloop.agents import AgentRuntime

    async with AgentRuntime(agent, store=store, run_id=run_id, scorer=_scorer(tasks), concurrency=1) as runtime:
        return await runtime.run_many([{"task_id": t.id, "prompt": t.prompt} for t in tasks], on_step=on_step,
                                      skip_finished=False)


def accuracy(trajectories: Sequence[Trajectory]) -> float:
    """Share of trajectories whose verifier reward is positive (0.0 for none)."""
    return sum(1 for t in trajectories if t.reward > 0) / len(trajectories) if trajectories else 0.0


def evaluate_suites(policy: Any, tasks_by_suite: Mapping[str, Sequence[Task]], *, tools: bool, cache_dir: Path,
                    store: Any = None, run_id: str = "eval",
                    on_step: Callable[[str, dict[str, Any]], None] | None = None
                    ) -> tuple[dict[str, float], dict[str, list[Trajectory]]]:
    """Greedy episodes of every task; returns accuracy and trajectories per suite.

    Args:
        policy: The policy to evaluate.
        tasks_by_suite: Suite name -> its tasks.
        tools: Offer the suite's tools (``False``: the same prompts, no tools).
        cache_dir: Where suites build tool data (the search index).
        store: Optional :class:`~reasonloop.trajectory.store.RunStore`.
        run_id: Run id in the store (the suite name is appended).
        on_step: Called with ``(suite, event)`` for every recorded step.
    """
    scores: dict[str, float] = {}
    trajs: dict[str, list[Trajectory]] = {}
    for suite, tasks in tasks_by_suite.items():
        agent = suite_agent(policy, suite, tasks, tools=tools, cache_dir=cache_dir)
        show = None if on_step is None else (lambda event, s=suite: on_step(s, event))  # type: ignore[misc]
        trajs[suite] = asyncio.run(_run_suite(agent, tasks, store=store, run_id=f"{run_id}-{suite}", on_step=show))
        scores[suite] = accuracy(trajs[suite])
    return scores, trajs


async def _group(agent: Any, task: Task, seed: int, config: Any) -> Any:
    from reasonloop.agents import AgentRuntime
    from reasonloop.training.rollout import rollout_group

    async with AgentRuntime(agent, scorer=_scorer([task])) as runtime:
        return await rollout_group(runtime, task.prompt, task_id=task.id, seed=seed, config=config)


def _informative(group: Any) -> bool:
    """Whether the group's rewards differ (an all-equal group has zero advantages: no signal)."""
    return len({round(t.reward, 9) for t in group.trajectories}) > 1


def arpo_finetune(model: Any, tokenizer: Any, tasks_by_suite: Mapping[str, Sequence[Task]], *, steps: int,
                  cache_dir: Path, group_size: int = 4, global_samples: int = 2, lr: float = 1e-4, seed: int = 0,
                  temperature: float = 1.0, max_draws: int = 1, groups_per_step: int = 1,
                  log: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """ARPO on the suites' verifiers: each step samples ``groups_per_step`` groups per suite, one update.

    With ``max_draws > 1`` a suite whose group is all right or all wrong (every advantage
    zero) draws another prompt, up to ``max_draws`` groups per group wanted, and only
    groups whose rewards differ are trained on (the filter of DAPO's dynamic sampling): a
    model that is either sure or helpless on most prompts still gets a signal every step.
    More groups per step average the update over more prompts (Adam moves every weight by
    about the learning rate whatever the gradient's size, so a one-prompt step is noisy).

    The model is updated in place. Returns one metrics dict per step (``reward_mean`` over
    every sampled trajectory, ``groups_drawn``, ``groups_trained``, ``branches``, the
    update's loss metrics, ``seconds``).
    """
    import torch

    from reasonloop.policy.hf import HFPolicyConfig
    from reasonloop.recipes.tiny import TEMPLATE
    from reasonloop.training.batch import check_rows, group_advantages, group_rows
    from reasonloop.training.engine import HFEngine
    from reasonloop.training.losses import PolicyLossConfig
    from reasonloop.training.rollout import RolloutConfig
    from reasonloop.training.update import UpdateSettings, policy_update

    engine = HFEngine(model, tokenizer, HFPolicyConfig(device="cpu", template=TEMPLATE))
    agents = {s: suite_agent(engine, s, ts, tools=True, cache_dir=cache_dir, temperature=temperature)
              for s, ts in tasks_by_suite.items()}
    config = RolloutConfig(mode="arpo", group_size=group_size, global_samples=global_samples)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    settings = UpdateSettings(loss=PolicyLossConfig(), micro_batch_size=4)
    rng = random.Random(seed)
    history: list[dict[str, Any]] = []
    for step in range(1, steps + 1):
        started = time.perf_counter()
        drawn: list[Any] = []
        groups: list[Any] = []
        for i, (s, ts) in enumerate(tasks_by_suite.items()):
            wanted = len(groups) + groups_per_step
            for draw in range(max(1, max_draws) * groups_per_step):
                group = asyncio.run(_group(agents[s], rng.choice(list(ts)), seed * 7919 + step * 131 + i + 7 * draw,
                                           config))
                drawn.append(group)
                if max_draws <= 1 or _informative(group):
                    groups.append(group)
                if len(groups) == wanted:
                    break
        rows = []
        for group in groups:
            per_step, _ = group_advantages(group, "grpo")
            rows.extend(group_rows(group, per_step)[0])
        trajs = [t for g in groups for t in g.trajectories]
        problems = check_rows(trajs, rows)
        if problems:  # never train on tokens that were not sampled
            raise RuntimeError("training rows differ from the sampled tokens: " + "; ".join(problems[:3]))
        update = policy_update(model, optimizer, rows, settings, pad_id=int(tokenizer.pad_token_id)) if rows else {}
        engine.sync_weights()
        sampled = [t for g in drawn for t in g.trajectories]
        entry = {"step": step, "reward_mean": sum(t.reward for t in sampled) / max(1, len(sampled)),
                 "trajectories": len(sampled), "groups_drawn": len(drawn), "groups_trained": len(groups),
                 "branches": sum(g.metrics.get("branches", 0.0) for g in drawn),
                 **update, "seconds": time.perf_counter() - started}
        history.append(entry)
        if log is not None:
            log(entry)
    return history
