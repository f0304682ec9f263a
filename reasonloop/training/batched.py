"""A rollout engine that decodes concurrent episodes together.

Rollouts run many episodes at once (a group's samples advance in rounds), and each
asks the policy for one turn. :class:`BatchedHFEngine` collects the turns requested
within a short window and samples them in one batch: the prompts are left-padded
and encoded together, then every decode step is one forward pass for the whole
batch. Each row keeps its own sampling settings, random generator (seeded per call,
as :class:`~reasonloop.policy.hf.HFPolicy` seeds it), stop ids, stop strings and
token budget, and is recorded exactly as HFPolicy records a turn (ids, log-probs and
full-vocabulary entropies at the sampling temperature). Batched kernels round
differently from single-row ones, so log-probs agree with HFPolicy's to float
rounding, not bit for bit.

Shapes: ``ids``/``mask`` ``[B, T]`` (left padded), positions ``[B, T]`` counted over
real tokens only; decode steps feed ``[B, 1]``; finished rows keep being fed a pad
token (their outputs are ignored) so the cache stays rectangular.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from reasonloop.errors import PolicyError
from reasonloop.policy.base import Completion, Context, SamplingParams, ToolSpec
from reasonloop.policy.hf import HFPolicy, HFPolicyConfig
from reasonloop.policy.hf_sampling import (
    IncrementalDecoder,
    LoopSettings,
    SampleResult,
    find_stop,
    token_distribution,
    top_p_probs,
)
from reasonloop.policy.parsing import parse_tool_calls, tool_stop_strings
from reasonloop.training.engine import EngineStats
from reasonloop.training.turn_batcher import TurnBatcher
from reasonloop.trajectory.schema import Usage

__all__ = ["BatchedHFEngine", "sample_batch"]


@dataclass(kw_only=True)
class _Row:
    settings: LoopSettings
    decoder: IncrementalDecoder
    longest_stop: int
    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    entropies: list[float] = field(default_factory=list)
    result: SampleResult | None = None

    def push(self, logits: torch.Tensor) -> int:
        """Sample one token from ``logits`` ``[V]``; set ``result`` when the row stops."""
        s = self.settings
        logp, entropy = token_distribution(logits, s.temperature)
        if s.temperature == 0:
            token = int(torch.argmax(logits).item())
        else:
            token = int(torch.multinomial(top_p_probs(logp.exp(), s.top_p), 1, generator=s.generator).item())
        self.ids.append(token)
        self.logprobs.append(float(logp[token].item()))
        self.entropies.append(float(entropy.item()))
        if token in s.stop_ids:
            self._finish("stop", self.decoder.tokenizer.convert_ids_to_tokens(token))
            return token
        seen = len(self.decoder.text)
        if self.decoder.push(token) and s.stop_strings:
            stop = find_stop(self.decoder.text, s.stop_strings, max(0, seen - self.longest_stop + 1))
            if stop is not None:
                self._finish("stop", stop)
                return token
        if len(self.ids) >= s.max_tokens:
            self._finish("length", None)
        return token

    def _finish(self, reason: str, stop: str | None) -> None:
        self.result = SampleResult(list(self.ids), list(self.logprobs), list(self.entropies), reason, stop)


@torch.inference_mode()
def sample_batch(model: Any, tokenizer: Any, prompts: Sequence[Sequence[int]], settings: Sequence[LoopSettings],
                 pad_id: int) -> tuple[list[SampleResult], int]:
    """Sample every prompt's continuation in one batch.

    Returns:
        One :class:`SampleResult` per prompt, and the number of token positions the
        model computed (padding included).
    """
    device = next(model.parameters()).device
    width = max(len(p) for p in prompts)
    b = len(prompts)
    ids = torch.full((b, width), pad_id, dtype=torch.long)
    mask = torch.zeros((b, width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(list(p))
        mask[i, width - len(p):] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    rows = [_Row(settings=s, decoder=IncrementalDecoder(tokenizer), longest_stop=max((len(x) for x in s.stop_strings), default=0))
            for s in settings]
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    computed = b * width
    next_pos = positions[:, -1:] + 1
    while True:
        logits = out.logits[:, -1].float()
        fed = [row.push(logits[i]) if row.result is None else pad_id for i, row in enumerate(rows)]
        if all(row.result is not None for row in rows):
            break
        mask = torch.cat([mask, torch.ones((b, 1), dtype=mask.dtype, device=device)], dim=1)
        out = model(input_ids=torch.tensor([[t] for t in fed], device=device), attention_mask=mask,
                    position_ids=next_pos, past_key_values=out.past_key_values, use_cache=True)
        next_pos = next_pos + 1
        computed += b
    return [row.result for row in rows if row.result is not None], computed


@dataclass(kw_only=True)
class _Request:
    prompt: list[int]
    tools: Sequence[ToolSpec]
    settings: LoopSettings


class BatchedHFEngine(HFPolicy):
    """:class:`HFPolicy` whose concurrent ``generate`` calls are sampled as one batch."""

    def __init__(self, model: Any, tokenizer: Any, config: HFPolicyConfig | None = None, *, max_batch: int = 64,
                 window_s: float = 0.002) -> None:
        """Args:
        model: A transformers causal LM (shared with the trainer).
        tokenizer: Its tokenizer.
        config: Device, dtype, template, tool format.
        max_batch: Most turns sampled in one batch.
        window_s: How long the first request of a batch waits for others.
        """
        super().__init__(model, tokenizer, config)
        self._batcher: TurnBatcher[_Request, Completion] = TurnBatcher(self._run, max_batch=max_batch,
                                                                        window_s=window_s)
        self.stats = EngineStats()
        self._pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)

    @property
    def module(self) -> Any:
        """The underlying transformers model."""
        return self.model

    def sync_weights(self) -> None:
        """Nothing is cached across calls: the next batch reads the new weights."""

    def _settings(self, prompt: Sequence[int], tools: Sequence[ToolSpec], sampling: SamplingParams) -> LoopSettings:
        limit = getattr(self.model.config, "max_position_embeddings", None)
        max_tokens = sampling.max_tokens
        if limit is not None:
            if len(prompt) >= limit:
                raise PolicyError(f"context of {len(prompt)} tokens does not fit the model's {limit} positions")
            max_tokens = min(max_tokens, limit - len(prompt))
        generator = torch.Generator(device=self.device)
        generator.manual_seed(sampling.seed if sampling.seed is not None else secrets.randbits(63))
        stops = tuple(dict.fromkeys([*sampling.stop, *tool_stop_strings(tools, self.tool_format)]))
        return LoopSettings(temperature=sampling.temperature, top_p=sampling.top_p, max_tokens=max_tokens,
                            stop_ids=self._stop_ids, stop_strings=stops, generator=generator)

    async def generate(self, context: Context, tools: Sequence[ToolSpec], sampling: SamplingParams) -> Completion:
        prompt = context.token_ids if context.token_ids is not None else self.start(context.messages, tools)
        if not prompt:
            raise PolicyError("BatchedHFEngine.generate needs a non-empty context")
        request = _Request(prompt=list(prompt), tools=tools, settings=self._settings(prompt, tools, sampling))
        return await self._batcher.submit(request)

    def _run(self, batch: list[_Request]) -> list[Completion]:
        with self._lock:
            results, computed = sample_batch(self.model, self.tokenizer, [r.prompt for r in batch],
                                             [r.settings for r in batch], self._pad)
        self.stats.calls += len(batch)
        self.stats.prompt_tokens += sum(len(r.prompt) for r in batch)
        self.stats.computed_tokens += computed
        return [self._completion(r, res) for r, res in zip(batch, results, strict=True)]

    def _completion(self, request: _Request, result: SampleResult) -> Completion:
        content = result.token_ids[:-1] if result.token_ids[-1] in self._stop_ids else result.token_ids
        text = self._decode(content)
        calls, errors = parse_tool_calls(text, request.tools, self.tool_format)
        return Completion(
            text=text, tool_calls=calls, parse_errors=errors, finish_reason=result.finish_reason,
            token_ids=result.token_ids, logprobs=result.logprobs, entropies=result.entropies, entropy_kind="exact",
            usage=Usage(prompt_tokens=len(request.prompt), completion_tokens=len(result.token_ids)),
            model=self.name, assistant_message={"role": "assistant", "content": text},
        )
