"""A rollout engine that samples with an in-process vLLM engine (the ``vllm`` extra).

Like :class:`~reasonloop.training.server_engine.ServerEngine`, the chat template and
the forced ids stay local: ``start``/``extend`` are a tokenising policy's over the
trainer's model, prompts go to vLLM as token ids (``TokensPrompt``), and a turn is
recorded with exactly the ids vLLM sampled, their log-probs and the top-k entropy
(``entropy_kind="topk"``) from ``SamplingParams(logprobs=k)``. Each request carries
its own seed, stops on the turn-end ids and the tool format's stop strings.

Concurrent ``generate`` calls (the episodes of a rollout round) are collected for a
short window and handed to one ``LLM.generate`` call, which batches them.

Weights: vLLM runs in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0`` while it is
built, which vLLM's reproducibility notes also ask for), colocated with the trainer.
:meth:`VLLMEngine.sync_weights` passes the trainer's parameters (LoRA folded in, see
:func:`~reasonloop.training.weight_sync.merged_weights`) by reference to the vLLM
model's ``load_weights`` through ``LLM.apply_model`` (or ``LLM.collective_rpc``), then
resets vLLM's prefix cache, whose blocks were computed with the old weights.
:meth:`VLLMEngine.launch` starts vLLM on dummy weights and pushes the trainer's.

Log-probs: vLLM's default is the log-softmax of the raw logits, what the trainer
recomputes at temperature 1 and top-p 1 (the rollout default); ``VLLMConfig.logprobs_mode``
(in vLLM versions that have it) records processed ones instead. vLLM is called only by
:func:`build_llm`, :func:`generate_batch` and :func:`push_weights`;
:func:`completion_from_output` is a pure conversion.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reasonloop.errors import ConfigError, PolicyError
from reasonloop.policy.base import Completion, Context, SamplingParams, ToolSpec
from reasonloop.policy.parsing import tool_stop_strings
from reasonloop.training.server_engine import LocalTokenizing, SyncStats, topk_entropy, turn_completion, turn_end_ids
from reasonloop.training.turn_batcher import TurnBatcher
from reasonloop.training.weight_sync import merged_weights

__all__ = ["VLLMConfig", "VLLMEngine", "build_llm", "completion_from_output", "generate_batch", "push_weights",
           "sampling_kwargs", "vllm_version"]

_IN_PROCESS = "VLLM_ENABLE_V1_MULTIPROCESSING"


@dataclass(frozen=True, kw_only=True)
class VLLMConfig:
    """How :class:`VLLMEngine` runs vLLM."""

    model_path: str | None = None
    """A checkpoint directory vLLM loads (config, tokenizer, weights); ``None`` writes the
    trainer model's config and tokenizer to a temporary directory and starts from dummy
    weights, replaced by the trainer's at launch."""
    gpu_memory_utilization: float = 0.4
    """Share of the GPU memory vLLM takes (weights and KV cache); the trainer needs the rest."""
    dtype: str = "auto"
    """``auto``, ``bfloat16``, ``float16`` or ``float32``."""
    enforce_eager: bool = False
    """Skip CUDA graph capture (slower decoding, faster start, less memory)."""
    max_model_len: int | None = None
    """Longest context (prompt + turn); ``None`` takes the model's."""
    top_logprobs: int = 5
    """Alternatives per sampled token (the top-k entropy's k)."""
    seed: int = 0
    """vLLM's global seed (requests without a seed draw from it)."""
    logprobs_mode: str | None = None
    """vLLM's ``logprobs_mode`` (e.g. ``processed_logprobs``); ``None`` keeps vLLM's default."""
    prefix_caching: bool = True
    """Reuse the KV blocks of shared prompt prefixes (an ARPO group shares many)."""

    def __post_init__(self) -> None:
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ConfigError("vllm.gpu_memory_utilization must be in (0, 1]")
        if self.dtype not in ("auto", "bfloat16", "float16", "float32"):
            raise ConfigError(f"vllm.dtype must be auto, bfloat16, float16 or float32, got {self.dtype!r}")
        if self.max_model_len is not None and self.max_model_len < 2:
            raise ConfigError("vllm.max_model_len must be >= 2")
        if self.top_logprobs < 1:
            raise ConfigError("vllm.top_logprobs must be >= 1")


# -- pure conversions ------------------------------------------------------------------


def sampling_kwargs(sampling: SamplingParams, *, stops: Sequence[str], stop_ids: Sequence[int], top_logprobs: int,
                    room: int | None = None) -> dict[str, Any]:
    """Keyword arguments of vLLM's ``SamplingParams`` for one turn.

    Args:
        sampling: The agent's settings.
        stops: Stop strings (kept in the output, as local sampling keeps them).
        stop_ids: Turn-end ids.
        top_logprobs: Alternatives per token.
        room: Positions left in the context window; caps ``max_tokens``.
    """
    max_tokens = sampling.max_tokens if room is None else min(sampling.max_tokens, room)
    return {
        "n": 1, "temperature": sampling.temperature, "top_p": sampling.top_p, "max_tokens": max_tokens,
        "seed": sampling.seed, "stop": list(dict.fromkeys(stops)), "stop_token_ids": sorted(set(stop_ids)),
        "include_stop_str_in_output": True, "logprobs": top_logprobs, "skip_special_tokens": False,
    }


def _position(logprobs: Mapping[int, Any], token: int, k: int) -> tuple[float, float]:
    """``(log-prob of token, top-k entropy)`` at one position of vLLM's log-prob dicts.

    vLLM adds the sampled token to the top-k when it ranks lower, so the entropy uses
    the k largest values only.
    """
    if token not in logprobs:
        raise PolicyError(f"vLLM returned no log-prob for the sampled token {token}")
    top = sorted((float(lp.logprob) for lp in logprobs.values()), reverse=True)[:k]
    return float(logprobs[token].logprob), topk_entropy(top)


def completion_from_output(local: Any, output: Any, *, prompt_len: int, tools: Sequence[ToolSpec], top_k: int,
                           model: str) -> Completion:
    """One vLLM ``CompletionOutput`` as a :class:`Completion`.

    Reads ``token_ids``, ``logprobs`` (one ``{id: Logprob}`` per sampled token) and
    ``finish_reason`` (``stop``, ``length`` or ``abort``); the text is decoded locally
    and tool calls are parsed in ``local``'s tool format.

    Raises:
        PolicyError: Log-probs missing or not aligned with the ids.
    """
    if output.finish_reason == "abort":
        return Completion(text="vLLM aborted the request", finish_reason="error", model=model)
    ids = [int(i) for i in output.token_ids]
    positions = output.logprobs
    if positions is None or len(positions) != len(ids):
        raise PolicyError("vLLM returned no or misaligned log-probs (was SamplingParams.logprobs set?)")
    pairs = [_position(p, t, top_k) for p, t in zip(positions, ids, strict=True)]
    finish = "length" if output.finish_reason == "length" else "stop"
    return turn_completion(local, prompt_len=prompt_len, tools=tools, ids=ids, logprobs=[lp for lp, _ in pairs],
                           entropies=[h for _, h in pairs], finish_reason=finish, top_k=top_k, model=model)


# -- the vLLM boundary -----------------------------------------------------------------


def vllm_version() -> str:
    """The installed vLLM's version (``not installed`` when it is missing)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vllm")
    except PackageNotFoundError:
        return "not installed"


@contextlib.contextmanager
def _in_process() -> Iterator[None]:
    """vLLM's engine core in this process while it is built (weights pass by reference)."""
    before = os.environ.get(_IN_PROCESS)
    os.environ[_IN_PROCESS] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(_IN_PROCESS, None)
        else:
            os.environ[_IN_PROCESS] = before


def build_llm(path: str, config: VLLMConfig, *, dummy: bool = False) -> Any:
    """A ``vllm.LLM`` over the checkpoint at ``path`` (``dummy``: random weights, to be pushed)."""
    try:
        from vllm import LLM
    except ImportError as exc:
        raise PolicyError(f"the vllm engine needs vLLM (pip install 'reasonloop[vllm]'): {exc}") from None
    kwargs: dict[str, Any] = {
        "model": path, "tokenizer": path, "dtype": config.dtype, "seed": config.seed,
        "gpu_memory_utilization": config.gpu_memory_utilization, "enforce_eager": config.enforce_eager,
        "max_model_len": config.max_model_len, "enable_prefix_caching": config.prefix_caching,
        "max_logprobs": max(20, config.top_logprobs),
    }
    if dummy:
        kwargs["load_format"] = "dummy"
    if config.logprobs_mode is not None:
        kwargs["logprobs_mode"] = config.logprobs_mode
    with _in_process():
        return LLM(**kwargs)


def generate_batch(llm: Any, prompts: Sequence[Sequence[int]], params: Sequence[dict[str, Any]]) -> list[Any]:
    """``llm.generate`` over token-id prompts; one ``RequestOutput`` per prompt, in order."""
    from vllm import SamplingParams as VLLMSampling
    from vllm.inputs import TokensPrompt

    inputs = [TokensPrompt(prompt_token_ids=list(p)) for p in prompts]
    return list(llm.generate(inputs, [VLLMSampling(**p) for p in params], use_tqdm=False))


def push_weights(llm: Any, weights: Sequence[tuple[str, Any]]) -> None:
    """Load ``(name, tensor)`` pairs (Hugging Face names) into the vLLM model, then reset its prefix cache.

    Raises:
        PolicyError: This vLLM has no way to run a function on its model, the model
            left some of its parameters unloaded, or the prefix cache could not be reset.
    """

    def load(model: Any) -> list[str]:
        loaded = model.load_weights(iter(weights))
        if not isinstance(loaded, set):  # older models do not report what they loaded
            return []
        return sorted({name for name, _ in model.named_parameters()} - loaded)

    if hasattr(llm, "apply_model"):
        missing = llm.apply_model(load)
    elif hasattr(llm, "collective_rpc"):
        missing = llm.collective_rpc(lambda worker: load(worker.model_runner.model))
    else:
        raise PolicyError(f"vLLM {vllm_version()} has neither LLM.apply_model nor LLM.collective_rpc: "
                          "pushing weights in process needs a newer vLLM")
    gaps = sorted({name for names in missing or [] for name in names or []})
    if gaps:
        raise PolicyError(f"vLLM {vllm_version()} did not load {len(gaps)} parameters from the trainer's "
                          f"weights (e.g. {gaps[:3]}): are they the same architecture?")
    reset = getattr(llm, "reset_prefix_cache", None)
    if callable(reset) and reset() is False:  # older versions return None
        raise PolicyError("vLLM could not reset its prefix cache after the weight push (requests still running?): "
                          "cached prefixes would be served from the old weights")


# -- the engine ------------------------------------------------------------------------


@dataclass(kw_only=True)
class _Request:
    prompt: list[int]
    tools: Sequence[ToolSpec]
    params: dict[str, Any]
    lag: int


class VLLMEngine(LocalTokenizing):
    """A :class:`~reasonloop.policy.base.Policy` whose turns are sampled by an in-process vLLM."""

    def __init__(self, local: Any, llm: Any, config: VLLMConfig | None = None, *, max_batch: int = 256,
                 window_s: float = 0.002) -> None:
        """Args:
        local: A tokenising policy over the trainer's model (an :class:`HFPolicy`):
            its ``start``/``extend``, tokenizer, tool format and turn-end ids are
            used, and its model is what :meth:`sync_weights` pushes.
        llm: A ``vllm.LLM`` of the same architecture (see :meth:`launch`).
        config: The settings ``llm`` was built with (``top_logprobs``, ``max_model_len``).
        max_batch: Most turns handed to one ``LLM.generate`` call.
        window_s: How long the first request of a batch waits for others.
        """
        self._batcher: TurnBatcher[_Request, Completion] = TurnBatcher(self._run, max_batch=max_batch,
                                                                        window_s=window_s)
        self.local, self.llm = local, llm
        self.config = config or VLLMConfig()
        self.stats = SyncStats()
        self._lock = threading.Lock()
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        limit = getattr(getattr(self.module, "config", None), "max_position_embeddings", None)
        self._max_len: int | None = self.config.max_model_len or limit
        self._trainer_version = self._served_version = 0

    @classmethod
    def launch(cls, local: Any, config: VLLMConfig | None = None, **options: Any) -> VLLMEngine:
        """Start vLLM for ``local``'s model and push the trainer's current weights into it.

        Args:
            local: The tokenising policy over the trainer's model.
            config: vLLM settings; without ``model_path`` the model's config and
                tokenizer are written to a temporary directory (removed by :meth:`close`).
            **options: ``max_batch``, ``window_s``.
        """
        config = config or VLLMConfig()
        workdir = None
        path = config.model_path
        if path is None:
            workdir = tempfile.TemporaryDirectory(prefix="reasonloop-vllm-")
            path = workdir.name
            _write_skeleton(local, path)
        engine = cls(local, build_llm(path, config, dummy=workdir is not None), config, **options)
        engine._workdir = workdir
        engine.sync_weights()
        engine._trainer_version = engine._served_version = 0
        return engine

    # -- Policy protocol -------------------------------------------------------------

    @property
    def name(self) -> str:
        return f"vllm:{self.local.name}"

    async def generate(self, context: Context, tools: Sequence[ToolSpec], sampling: SamplingParams) -> Completion:
        prompt = context.token_ids if context.token_ids is not None else self.start(context.messages, tools)
        if not prompt:
            raise PolicyError("VLLMEngine.generate needs a non-empty context")
        room = None if self._max_len is None else self._max_len - len(prompt)
        if room is not None and room < 1:
            raise PolicyError(f"context of {len(prompt)} tokens does not fit the model's {self._max_len} positions")
        params = sampling_kwargs(sampling, stops=[*sampling.stop, *tool_stop_strings(tools, self.tool_format)],
                                 stop_ids=sorted(turn_end_ids(self.local)), top_logprobs=self.config.top_logprobs,
                                 room=room)
        request = _Request(prompt=list(prompt), tools=tools, params=params,
                           lag=self._trainer_version - self._served_version)
        return await self._batcher.submit(request)

    def _run(self, batch: list[_Request]) -> list[Completion]:
        with self._lock:
            outputs = generate_batch(self.llm, [r.prompt for r in batch], [r.params for r in batch])
        done = []
        for r, out in zip(batch, outputs, strict=True):
            completion = completion_from_output(self.local, out.outputs[0], prompt_len=len(r.prompt), tools=r.tools,
                                                top_k=self.config.top_logprobs, model=self.name)
            self.stats.record_turn(len(r.prompt), len(completion.token_ids), r.lag,
                                   int(getattr(out, "num_cached_tokens", 0) or 0))
            done.append(completion)
        return done

    def sync_weights(self, model: Any = None) -> None:
        """Load ``model``'s weights (default: :attr:`module`, LoRA merged) into vLLM.

        Raises:
            PolicyError: This vLLM cannot take weights in process (the message names
                its version), or it did not load all of its parameters.
        """
        started = time.perf_counter()
        self._trainer_version += 1
        weights = list(merged_weights(self.module if model is None else model))
        with self._lock:
            push_weights(self.llm, weights)
        self._served_version = self._trainer_version
        self.stats.syncs += 1
        self.stats.sync_s += time.perf_counter() - started

    def close(self) -> None:
        """Drop the vLLM engine and the temporary checkpoint directory."""
        self.llm = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None


def _write_skeleton(local: Any, path: str) -> None:
    """The trainer model's config, generation config and tokenizer (no weights) in ``path``."""
    model = local.model if getattr(local, "module", None) is None else local.module
    base = model.get_base_model() if hasattr(model, "peft_config") else model
    base.config.save_pretrained(path)
    if getattr(base, "generation_config", None) is not None:
        base.generation_config.save_pretrained(path)
    local.tokenizer.save_pretrained(path)
