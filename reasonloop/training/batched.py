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
from reasonloop.training.engine import EngineStats
from reasonloop.training.turn_batcher import TurnBatcher

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

    async def generate(self, context: Context, tools: Sequence[ToolSpec], sampling: SamplingParams) -> Completion:
        prompt = context.token_ids if context.token_ids is not None else self.start(context.messages, tools)
        if not prompt:
            raise PolicyError("BatchedHFEngine.generate needs a non-empty context")
        request = _Request(prompt=list(prompt), tools=tools, settings=self.loop_settings(prompt, tools, sampling))
        return await self._batcher.submit(request)

    def _run(self, batch: list[_Request]) -> list[Completion]:
        with self._lock:
            results, computed = sample_batch(self.model, self.tokenizer, [r.prompt for r in batch],
                                             [r.settings for r in batch], self._pad)
        self.stats.calls += len(batch)
        self.stats.prompt_tokens += sum(len(r.prompt) for r in batch)
        self.stats.computed_tokens += computed
        return [self.completion_from(res, prompt_len=len(r.prompt), tools=r.tools)
                for r, res in zip(batch, results, strict=True)]
