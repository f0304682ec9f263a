"""Building a run from its config: model, tasks, tools, engine, agent, warm start."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from reasonloop.agents import AgentRuntime, build_react_agent
from reasonloop.agents.react import Agent
from reasonloop.bench.task import Task
from reasonloop.errors import ConfigError
from reasonloop.policy.base import Policy, SamplingParams
from reasonloop.policy.hf import HFPolicyConfig
from reasonloop.registry import Registry
from reasonloop.tools.base import Tool
from reasonloop.training.branching import BranchConfig
from reasonloop.training.config import LoraSection, ModelSection, RolloutSection, SFTSection, TaskSection
from reasonloop.training.engine import HFEngine
from reasonloop.training.rollout import RolloutConfig
from reasonloop.training.sft import SFTConfig, TeacherPolicy, run_sft
from reasonloop.trajectory.schema import Trajectory

__all__ = [
    "SUITES",
    "apply_lora",
    "build_agent",
    "build_engine",
    "build_model",
    "build_tasks",
    "record_experts",
    "rollout_config",
    "warm_start",
    "warm_toy",
]


def _lookup(cfg: TaskSection) -> tuple[list[Task], list[Tool]]:
    from reasonloop.training.toy import lookup_tasks, lookup_tool

    return lookup_tasks(cfg.n, seed=cfg.seed), [lookup_tool()]


def _chain(cfg: TaskSection) -> tuple[list[Task], list[Tool]]:
    from reasonloop.training.toy import chain_tasks, lookup_tool

    return chain_tasks(cfg.n, seed=cfg.seed), [lookup_tool()]


def _arith(cfg: TaskSection) -> tuple[list[Task], list[Tool]]:
    from reasonloop.bench.arith import arith_tasks
    from reasonloop.tools.calculator import calculator_tool

    return arith_tasks(cfg.n, seed=cfg.seed, difficulty=cfg.difficulty), [calculator_tool()]


SUITES: Registry[Callable[[TaskSection], tuple[list[Task], list[Tool]]]] = Registry("task suite")
SUITES.register("lookup", _lookup)
SUITES.register("chain", _chain)
SUITES.register("arith", _arith)


def build_tasks(cfg: TaskSection) -> tuple[list[Task], list[Tool]]:
    """The suite's tasks and the tools they need."""
    return SUITES.get(cfg.suite)(cfg)


def build_model(cfg: ModelSection) -> tuple[Any, Any]:
    """``(tokenizer, model)``: the toy pair, or a local checkpoint (never downloaded)."""
    if cfg.kind == "toy":
        from reasonloop.training.toy import toy_policy_pair

        return toy_policy_pair(hidden=cfg.hidden, layers=cfg.layers, heads=cfg.heads, seed=cfg.seed,
                               template=cfg.template)
    if not cfg.path:
        raise ConfigError("model.path is required for model.kind 'hf'")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(cfg.path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(cfg.path, local_files_only=True)
    return tokenizer, model


def apply_lora(model: Any, cfg: LoraSection) -> Any:
    """Wrap ``model`` with peft LoRA adapters (only the adapters train)."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                      target_modules=list(cfg.target_modules), task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def build_engine(model: Any, tokenizer: Any, cfg: ModelSection, *, prefix_reuse: bool = True,
                 kind: str = "prefix_reuse") -> Any:
    """The rollout engine over the trainer's own model object (``prefix_reuse`` or ``batched``)."""
    policy_config = HFPolicyConfig(device=cfg.device, template=cfg.template)
    if kind == "batched":
        from reasonloop.training.batched import BatchedHFEngine

        return BatchedHFEngine(model, tokenizer, policy_config)
    if kind != "prefix_reuse":
        raise ConfigError(f"unknown engine {kind!r}; valid: batched, prefix_reuse")
    return HFEngine(model, tokenizer, policy_config, prefix_reuse=prefix_reuse)


def build_agent(policy: Policy, tools: Sequence[Tool], cfg: RolloutSection) -> Agent:
    """The ReAct agent the rollouts run (the same builder users run)."""
    sampling = SamplingParams(temperature=cfg.temperature, max_tokens=cfg.max_tokens)
    return build_react_agent(policy, list(tools), sampling=sampling, max_steps=cfg.max_steps,
                             max_tool_calls=cfg.max_tool_calls, name="react")


def rollout_config(cfg: RolloutSection) -> RolloutConfig:
    branch = BranchConfig(alpha=cfg.alpha, beta=cfg.beta, tau=cfg.tau, mode=cfg.branch_mode, window=cfg.window,
                          normalise=cfg.normalise, consecutive_penalty=cfg.consecutive_penalty)
    return RolloutConfig(mode=cfg.mode, group_size=cfg.group_size, global_samples=min(cfg.global_samples, cfg.group_size),
                         branch_factor=cfg.branch_factor, branch=branch, top_up=cfg.top_up, premonitor=cfg.premonitor)


def record_experts(engine: Any, tasks: Sequence[Task], tools: Sequence[Tool], cfg: RolloutSection) -> list[Trajectory]:
    """The tasks' scripted experts run through the real agent and tools, tokenised by ``engine``."""
    agent = build_agent(TeacherPolicy(engine, tasks), tools, cfg)

    async def go() -> list[Trajectory]:
        async with AgentRuntime(agent) as runtime:
            return await runtime.run_many([{"task_id": t.id, "prompt": t.prompt} for t in tasks])

    return asyncio.run(go())


def warm_start(engine: HFEngine, tasks: Sequence[Task], tools: Sequence[Tool], rollout: RolloutSection,
               cfg: SFTSection) -> dict[str, float]:
    """SFT on scripted-expert trajectories of ``tasks``; returns the last step's metrics."""
    experts = record_experts(engine, tasks, tools, rollout)
    history = run_sft(engine.module, experts, SFTConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
                                                        seed=cfg.seed), pad_id=int(engine.tokenizer.pad_token_id))
    engine.sync_weights()
    return dict(history[-1]) if history else {}


def warm_toy(suite: str = "lookup", *, sft_steps: int = 60, n_tasks: int = 64, model_seed: int = 0,
             unclosed_every: int | None = 2) -> tuple[Any, Any]:
    """A toy model warm-started by SFT on a suite's scripted experts (for examples and benchmarks).

    With ``unclosed_every``, that share of the experts forget ``</answer>`` (see
    :func:`~reasonloop.training.toy.with_unclosed_answers`), leaving a format habit for RL to fix.

    Returns:
        ``(tokenizer, model)`` on CPU.
    """
    from reasonloop.training.toy import toy_policy_pair, with_unclosed_answers

    tokenizer, model = toy_policy_pair(seed=model_seed)
    engine = build_engine(model, tokenizer, ModelSection(device="cpu"))
    tasks, tools = build_tasks(TaskSection.model_validate({"suite": suite, "n": n_tasks, "seed": 1}))
    if unclosed_every:
        tasks = with_unclosed_answers(tasks, unclosed_every)
    experts = record_experts(engine, tasks, tools, RolloutSection(max_steps=4))
    run_sft(model, experts, SFTConfig(steps=sft_steps, batch_size=16, lr=3e-3), pad_id=int(tokenizer.pad_token_id))
    return tokenizer, model
