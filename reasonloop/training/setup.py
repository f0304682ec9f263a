"""Building a run from its config: model, tasks, tools, engine, agent, warm start; saving what it trained."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
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
from reasonloop.training.config import (
    LoraSection,
    ModelSection,
    ModelSource,
    RolloutSection,
    SFTSection,
    TaskSection,
    TrainConfig,
    resolve_model_path,
)
from reasonloop.training.engine import HFEngine
from reasonloop.training.rollout import RolloutConfig
from reasonloop.training.sft import SFTConfig, TeacherPolicy, run_sft
from reasonloop.trajectory.schema import Trajectory

__all__ = [
    "ENGINES",
    "SUITES",
    "apply_lora",
    "build_agent",
    "build_engine",
    "build_model",
    "build_tasks",
    "load_model",
    "lora_config",
    "record_experts",
    "rollout_config",
    "save_model",
    "save_trained",
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
    """``(tokenizer, model)``: the toy pair, or a local model (never downloaded): a
    checkpoint directory, a GGUF file (dequantised) or an alias, see :func:`load_model`."""
    if cfg.kind == "toy":
        from reasonloop.training.toy import toy_policy_pair

        return toy_policy_pair(hidden=cfg.hidden, layers=cfg.layers, heads=cfg.heads, seed=cfg.seed,
                               template=cfg.template or "chatml-tags")
    if not cfg.path:
        raise ConfigError("model.path is required for model.kind 'hf'")
    return load_model(resolve_model_path(cfg.path))


def load_model(source: ModelSource) -> tuple[Any, Any]:
    """``(tokenizer, model)`` of a resolved model path; the tokenizer always has a pad token.

    Raises:
        PolicyError: The files are there but transformers cannot read them.
    """
    if source.gguf:
        from reasonloop.policy.gguf import load_gguf

        return load_gguf(source.path)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source.path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(source.path, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model


def save_model(model: Any, tokenizer: Any, target: str | Path, *, gguf: bool = False) -> Path:
    """Write ``model`` and ``tokenizer`` as one checkpoint directory (``hf:TARGET`` loads it).

    A GGUF-loaded model (``gguf``) or a peft model (merged first) goes through
    :func:`reasonloop.policy.gguf.save_checkpoint`: transformers' ``save_pretrained``
    refuses the one and would write only the adapter of the other.
    """
    where = Path(target)
    if gguf or hasattr(model, "peft_config"):
        from reasonloop.policy.gguf import save_checkpoint

        return save_checkpoint(model, tokenizer, where)
    model.save_pretrained(where)
    tokenizer.save_pretrained(where)
    return where


def save_trained(model: Any, tokenizer: Any, out: str | Path, source: ModelSource | None) -> dict[str, str | None]:
    """Write what a run trained, loadable with ``--model MODEL [--adapter ADAPTER]``.

    A peft model over a base that a model string names (``source``) is saved as its
    adapter (``OUT/adapter``, safetensors); anything else as a whole checkpoint
    (``OUT/model``, LoRA merged, see :func:`save_model`).

    Args:
        model: The trained model (peft-wrapped or not).
        tokenizer: Its tokenizer.
        out: Directory the result goes under.
        source: Where the base came from; ``None`` for a model no path names (the toy).

    Returns:
        ``{"model": model string, "adapter": adapter directory or None}``.
    """
    root = Path(out)
    if hasattr(model, "peft_config") and source is not None:
        adapter = root / "adapter"
        model.save_pretrained(str(adapter), safe_serialization=True)
        return {"model": source.model, "adapter": str(adapter)}
    target = save_model(model, tokenizer, root / "model", gguf=source is not None and source.gguf)
    return {"model": f"hf:{target}", "adapter": None}


def lora_config(cfg: LoraSection) -> Any:
    """The peft ``LoraConfig`` of a config's ``optim.lora`` (what :func:`apply_lora` wraps with)."""
    from peft import LoraConfig

    return LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                      target_modules=list(cfg.target_modules), task_type="CAUSAL_LM")


def apply_lora(model: Any, cfg: LoraSection, *, seed: int = 0) -> Any:
    """Wrap ``model`` with peft LoRA adapters (only the adapters train).

    The adapters' random initialisation is drawn from ``seed`` (the global RNG is left
    untouched), so the same config starts from the same adapters.
    """
    import torch
    from peft import get_peft_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return get_peft_model(model, lora_config(cfg))


EngineBuilder = Callable[[Any, Any, HFPolicyConfig, TrainConfig | None, bool], Any]
"""``(model, tokenizer, local policy config, the run's config, prefix_reuse) -> engine``."""
ENGINES: Registry[EngineBuilder] = Registry("rollout engine")


@ENGINES.decorator("prefix_reuse")
def _prefix_reuse(model: Any, tokenizer: Any, policy: HFPolicyConfig, train: TrainConfig | None, reuse: bool) -> Any:
    return HFEngine(model, tokenizer, policy, prefix_reuse=reuse)


@ENGINES.decorator("batched")
def _batched(model: Any, tokenizer: Any, policy: HFPolicyConfig, train: TrainConfig | None, reuse: bool) -> Any:
    from reasonloop.training.batched import BatchedHFEngine

    return BatchedHFEngine(model, tokenizer, policy)


@ENGINES.decorator("vllm")
def _vllm(model: Any, tokenizer: Any, policy: HFPolicyConfig, train: TrainConfig | None, reuse: bool) -> Any:
    from reasonloop.policy.hf import HFPolicy
    from reasonloop.training.vllm_engine import VLLMConfig, VLLMEngine

    section = (train or TrainConfig()).vllm
    return VLLMEngine.launch(HFPolicy(model, tokenizer, policy), VLLMConfig(**section.model_dump()))


@ENGINES.decorator("server")
def _server(model: Any, tokenizer: Any, policy: HFPolicyConfig, train: TrainConfig | None, reuse: bool) -> Any:
    import os

    from reasonloop.policy.hf import HFPolicy
    from reasonloop.training.server_engine import ServerEngine
    from reasonloop.training.weight_sync import WeightSyncConfig, build_weight_sync

    s = (train or TrainConfig()).server
    if not s.model:
        raise ConfigError("rollout.engine server needs server.model (the name the server serves)")
    key = os.environ.get(s.api_key_env) if s.api_key_env else None
    if s.api_key_env and key is None:
        raise ConfigError(f"server.api_key_env names {s.api_key_env!r}, which is not set")
    sync = build_weight_sync(WeightSyncConfig(**s.weight_sync.model_dump()))
    return ServerEngine(HFPolicy(model, tokenizer, policy), s.base_url, s.model, top_logprobs=s.top_logprobs,
                        timeout_s=s.timeout_s, api_key=key, sync_timeout_s=s.sync_timeout_s, weight_sync=sync)


def build_engine(model: Any, tokenizer: Any, cfg: ModelSection, *, prefix_reuse: bool = True,
                 kind: str = "prefix_reuse", train: TrainConfig | None = None) -> Any:
    """The rollout engine :data:`ENGINES` names, over the trainer's own model object.

    ``prefix_reuse`` and ``batched`` sample with that model; ``vllm`` and ``server`` sample
    elsewhere and keep it for tokenising and for the weights they are sent (``train``'s
    ``vllm`` / ``server`` sections configure them). Trajectories name the model as
    ``--model`` does (``smollm2``, ``hf:PATH``).
    """
    name = resolve_model_path(cfg.path).model if cfg.kind == "hf" and cfg.path else None
    policy_config = HFPolicyConfig(device=cfg.device, template=cfg.template, name=name)
    return ENGINES.get(kind)(model, tokenizer, policy_config, train, prefix_reuse)


def build_agent(policy: Policy, tools: Sequence[Tool], cfg: RolloutSection) -> Agent:
    """The ReAct agent the rollouts run (the same builder users run)."""
    sampling = SamplingParams(temperature=cfg.temperature, max_tokens=cfg.max_tokens)
    return build_react_agent(policy, list(tools), system_prompt=cfg.system_prompt, sampling=sampling,
                             max_steps=cfg.max_steps, max_tool_calls=cfg.max_tool_calls, name="react")


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
