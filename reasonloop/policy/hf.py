"""A local transformers causal LM as a :class:`~reasonloop.policy.base.Policy`.

Token-in, token-out: ``start`` renders the prompt with the chat template and tokenises
it once; ``generate`` samples from the context's token ids exactly as given; ``extend``
tokenises only the text the template appends for the new messages (tool results,
feedback) and the next generation prompt. Nothing the model sampled is ever
re-tokenised, so the ids a trainer reads are the ids the model produced.

Log-probs and entropies (see :mod:`reasonloop.policy.hf_sampling`): per sampled token,
``log softmax(logits / T)`` of the full vocabulary at the sampling temperature ``T``,
before top-p truncation (``T = 1`` for greedy), and the entropy of that distribution.
A trainer that divides its logits by the temperature recorded in
``PolicyStep.sampling`` recomputes exactly these values
(:func:`reasonloop.policy.hf_sampling.score_tokens` does it, aligned with
``TrainingSequence``).

The assistant message a completion returns is the sampled text as content (its tool
calls written inside it, parsed into ``Completion.tool_calls``), so the chat template
renders that turn exactly as it was sampled.

torch and transformers are imported inside the methods that need them.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonloop.errors import ConfigError, PolicyError, UnknownNameError
from reasonloop.policy.base import Completion, Context, SamplingParams, ToolFormat, ToolSpec
from reasonloop.policy.parsing import parse_tool_calls, tool_stop_strings
from reasonloop.policy.templates import (
    ChatTemplate,
    TemplateRegistry,
    builtin_templates,
    render_appended,
    render_segments,
)
from reasonloop.trajectory.schema import Usage

__all__ = ["MODEL_PREFIX", "HFPolicy", "HFPolicyConfig"]

MODEL_PREFIX = "hf:"
"""Model strings ``hf:PATH`` name a local transformers checkpoint directory."""

_DTYPES = ("auto", "float32", "bfloat16", "float16")
_DEFAULT_TEMPLATE = "chatml-json"
_log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class HFPolicyConfig:
    """How :class:`HFPolicy` runs its model."""

    device: str | None = None
    """``cpu``, ``cuda``, ``cuda:1``...; ``None`` picks CUDA when available, else CPU."""
    dtype: str = "auto"
    """``float32``, ``bfloat16``, ``float16``, or ``auto`` (keep the model's dtype)."""
    template: str | None = None
    """A registry template name; ``None`` uses the tokenizer's own ``chat_template``
    (or ``chatml-json`` when the tokenizer has none)."""
    tool_format: ToolFormat | None = None
    """``json`` or ``tags``; ``None`` takes the registry template's format, else ``json``."""
    name: str | None = None
    """Recorded in trajectories; defaults to ``hf:<model name or path>``."""
    extra_stop_tokens: tuple[str, ...] = ()
    """Further special tokens that end a turn when sampled."""

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPES:
            raise ConfigError(f"HFPolicyConfig.dtype must be one of {_DTYPES}, got {self.dtype!r}")
        if self.tool_format is not None and self.tool_format not in ("json", "tags"):
            raise ConfigError("HFPolicyConfig.tool_format must be 'json' or 'tags' (tool calls live in the text)")
        if self.device is not None and not self.device.strip():
            raise ConfigError("HFPolicyConfig.device must not be empty")


class HFPolicy:
    """A transformers causal LM that samples, scores and appends tokens itself."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        config: HFPolicyConfig | None = None,
        *,
        templates: TemplateRegistry | None = None,
    ) -> None:
        """Wrap ``model`` and ``tokenizer``.

        Args:
            model: A ``transformers`` causal LM.
            tokenizer: Its tokenizer.
            config: Device, dtype, template and tool format.
            templates: Registry the ``config.template`` name is looked up in
                (defaults to :func:`~reasonloop.policy.templates.builtin_templates`).
        """
        import torch

        self.config = config or HFPolicyConfig()
        self.tokenizer = tokenizer
        self._template = _resolve_template(self.config, tokenizer, templates or builtin_templates())
        self._tool_format: ToolFormat = self.config.tool_format or self._template.tool_format
        device = self.config.device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.config.dtype != "auto":
            model = model.to(dtype=getattr(torch, self.config.dtype))
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self._stop_ids = self._turn_end_ids()
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hf-policy")
        path = getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
        self._name = self.config.name or f"{MODEL_PREFIX}{path}"

    @classmethod
    def from_pretrained(
        cls, path: str | Path, config: HFPolicyConfig | None = None, *, adapter: str | Path | None = None,
        **overrides: Any,
    ) -> HFPolicy:
        """Load a local checkpoint directory or GGUF file (no downloads).

        Args:
            path: Directory written by ``save_pretrained`` (model and tokenizer), a
                ``.gguf`` file, or a directory holding one ``.gguf`` file and no
                ``config.json`` (dequantised on load, see :mod:`reasonloop.policy.gguf`).
            config: Policy settings; ``overrides`` replace single fields.
            adapter: A peft LoRA adapter directory, merged into the weights.
            **overrides: ``HFPolicyConfig`` fields, e.g. ``device="cpu"``.
        """
        import dataclasses

        from reasonloop.policy.gguf import find_gguf, load_adapter, load_gguf

        try:
            cfg = dataclasses.replace(config or HFPolicyConfig(), **overrides)
        except TypeError:
            valid = [f.name for f in dataclasses.fields(HFPolicyConfig)]
            raise ConfigError(f"unknown HFPolicyConfig field in {sorted(overrides)}; valid: {valid}") from None
        where = Path(path)
        gguf_file = find_gguf(where)
        if gguf_file is not None:
            tokenizer, model = load_gguf(gguf_file, dtype=cfg.dtype)
        else:
            tokenizer, model = _load_checkpoint(where, cfg.dtype)
        if adapter is not None:
            model = load_adapter(model, adapter)
        if cfg.name is None:
            suffix = f"+{Path(adapter).name}" if adapter is not None else ""
            cfg = dataclasses.replace(cfg, name=f"{MODEL_PREFIX}{where}{suffix}")
        return cls(model, tokenizer, cfg)

    @classmethod
    def from_model_string(cls, spec: str, config: HFPolicyConfig | None = None, **overrides: Any) -> HFPolicy:
        """Build from ``hf:PATH`` (the form CLI and config files use); ``adapter=DIR`` passes through."""
        if not spec.startswith(MODEL_PREFIX) or not spec[len(MODEL_PREFIX) :]:
            raise ConfigError(f"expected a model string 'hf:PATH', got {spec!r}")
        return cls.from_pretrained(spec[len(MODEL_PREFIX) :], config, **overrides)

    # -- Policy protocol -------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def tool_format(self) -> ToolFormat:
        return self._tool_format

    @property
    def template(self) -> ChatTemplate:
        """The chat template this policy renders with."""
        return self._template

    def start(self, messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]) -> list[int]:
        """Token ids of the rendered prompt, generation prompt included.

        Message contents are tokenised as plain text: a prompt that spells a special
        token (``<|im_end|>``) gets that text's ordinary ids, not the marker.
        """
        segments = render_segments(
            self._template.source, list(messages), _schemas(tools), add_generation_prompt=True, **self._template_vars()
        )
        return self._encode_segments(segments)

    def extend(self, context: Context, new_messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]) -> list[int]:
        """Forced ids that append ``new_messages`` and the next generation prompt.

        ``context.messages`` must already hold the last assistant message and
        ``context.token_ids`` its sampled ids. Only the text the template appends is
        tokenised: after a turn that ended on a sampled ``<|im_end|>`` the ids start
        with the template's ``\\n``; after a turn cut at a stop string they first
        close the turn (``<|im_end|>\\n``).

        Raises:
            PolicyError: ``context.token_ids`` is missing, or the template rewrites earlier turns.
        """
        if context.token_ids is None:
            raise PolicyError("HFPolicy.extend needs context.token_ids (call start() first)")
        appended = render_appended(
            self._template.source,
            context_text=self._decode(context.token_ids),
            messages=context.messages,
            new_messages=list(new_messages),
            tools=_schemas(tools),
            turn_end_tokens=tuple(self.tokenizer.convert_ids_to_tokens(sorted(self._stop_ids))),
            normalize=self._normalizer(),
            **self._template_vars(),
        )
        if not appended.exact:
            _log.warning("HFPolicy.extend: %s; appended the new turn after closing the open one", appended.note)
        return self._encode_segments(appended.segments or ((appended.text, False),))

    async def generate(self, context: Context, tools: Sequence[ToolSpec], sampling: SamplingParams) -> Completion:
        """Sample the next assistant turn.

        Runs on this policy's own worker thread, so concurrent episodes queue for the
        model without holding threads of the event loop's default pool.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.complete, context, tools, sampling)

    def close(self) -> None:
        """Stop the worker thread (the policy can still be used synchronously)."""
        self._executor.shutdown(wait=True)

    # -- work ------------------------------------------------------------------------

    def complete(self, context: Context, tools: Sequence[ToolSpec], sampling: SamplingParams) -> Completion:
        """Synchronous :meth:`generate`.

        Uses ``context.token_ids`` as the prompt, or renders ``context.messages`` when
        it is ``None``. Stops on a turn-end token (kept, it was sampled), on a stop
        string from ``sampling.stop`` or the tool format (the token that completes it
        is kept), or after ``sampling.max_tokens`` ids.
        """
        from reasonloop.policy.hf_sampling import sample_tokens

        prompt = context.token_ids if context.token_ids is not None else self.start(context.messages, tools)
        if not prompt:
            raise PolicyError("HFPolicy.generate needs a non-empty context")
        settings = self.loop_settings(prompt, tools, sampling)
        with self._lock:
            result = sample_tokens(self.model, self.tokenizer, prompt, settings)
        return self.completion_from(result, prompt_len=len(prompt), tools=tools)

    def loop_settings(self, prompt: Sequence[int], tools: Sequence[ToolSpec], sampling: SamplingParams) -> Any:
        """The sampling loop's settings for one turn after ``prompt`` (a ``LoopSettings``).

        The token budget is cut to the positions the model has left; the generator is
        seeded from ``sampling.seed`` (fresh randomness without one).
        """
        import torch

        from reasonloop.policy.hf_sampling import LoopSettings

        limit = getattr(self.model.config, "max_position_embeddings", None)
        max_tokens = sampling.max_tokens
        if limit is not None:
            if len(prompt) >= limit:
                raise PolicyError(f"context of {len(prompt)} tokens does not fit the model's {limit} positions")
            max_tokens = min(max_tokens, limit - len(prompt))
        generator = torch.Generator(device=self.device)
        generator.manual_seed(sampling.seed if sampling.seed is not None else secrets.randbits(63))
        return LoopSettings(
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=max_tokens,
            stop_ids=self._stop_ids,
            stop_strings=tuple(dict.fromkeys([*sampling.stop, *tool_stop_strings(tools, self._tool_format)])),
            generator=generator,
        )

    def completion_from(self, result: Any, *, prompt_len: int, tools: Sequence[ToolSpec]) -> Completion:
        """A sampled turn (a ``SampleResult``) as a :class:`Completion`: the turn-end id is
        kept in the ids (it was sampled) and left out of the text."""
        content_ids = result.token_ids[:-1] if result.token_ids[-1] in self._stop_ids else result.token_ids
        text = self._decode(content_ids)
        calls, errors = parse_tool_calls(text, tools, self._tool_format)
        return Completion(
            text=text,
            tool_calls=calls,
            parse_errors=errors,
            finish_reason=result.finish_reason,
            token_ids=result.token_ids,
            logprobs=result.logprobs,
            entropies=result.entropies,
            entropy_kind="exact",
            usage=Usage(prompt_tokens=prompt_len, completion_tokens=len(result.token_ids)),
            model=self._name,
            assistant_message={"role": "assistant", "content": text},
        )

    # -- helpers ---------------------------------------------------------------------

    def _encode(self, text: str, *, plain: bool = False) -> list[int]:
        ids = self.tokenizer.encode(text, add_special_tokens=False, split_special_tokens=plain)
        return [int(i) for i in ids]

    def _encode_segments(self, segments: Sequence[tuple[str, bool]]) -> list[int]:
        """Template text with its special tokens; contents (``True``) as plain text."""
        return [i for text, plain in segments for i in self._encode(text, plain=plain)]

    def _decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False))

    def _normalizer(self) -> Any:
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        normalizer = getattr(backend, "normalizer", None)
        return None if normalizer is None else normalizer.normalize_str

    def _template_vars(self) -> dict[str, Any]:
        return {"bos_token": self.tokenizer.bos_token or "", "eos_token": self.tokenizer.eos_token or ""}

    def _turn_end_ids(self) -> frozenset[int]:
        """Ids that end a turn: the template's turn-end tokens, the tokenizer's and the
        generation config's EOS, and the configured extras."""
        names = [*self._template.turn_end_tokens, *self.config.extra_stop_tokens]
        if self.tokenizer.eos_token:
            names.append(self.tokenizer.eos_token)
        vocab = self.tokenizer.get_vocab()
        ids = {int(vocab[n]) for n in names if n in vocab}
        eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids.update(int(i) for i in ([] if eos is None else [eos] if isinstance(eos, int) else eos))
        return frozenset(ids)


def _load_checkpoint(where: Path, dtype: str) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (where / "config.json").is_file():
        raise PolicyError(f"no transformers checkpoint or single .gguf file at {where} (config.json missing)")
    tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(where, local_files_only=True, dtype=dtype)
    return tokenizer, model


def _schemas(tools: Sequence[ToolSpec]) -> list[dict[str, Any]] | None:
    return [t.openai_schema() for t in tools] or None


def _resolve_template(config: HFPolicyConfig, tokenizer: Any, registry: TemplateRegistry) -> ChatTemplate:
    if config.template is not None:
        try:
            return registry.get(config.template)
        except UnknownNameError as exc:
            raise ConfigError(str(exc)) from None
    own = getattr(tokenizer, "chat_template", None)
    if isinstance(own, str) and own.strip():
        for template in registry:
            if template.source == own:
                return template
        return ChatTemplate(name="tokenizer", source=own, tool_format=config.tool_format or "json")
    return registry.get(_DEFAULT_TEMPLATE)
