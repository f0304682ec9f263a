"""A rollout engine that decodes concurrent episodes together.

Rollouts run many episodes at once (a group's samples advance in rounds), and each
asks the policy for one turn. :class:`BatchedHFEngine` collects the turns requested
within a short window and samples them in one batch. Each row keeps its own sampling
settings, random generator (seeded per call, as :class:`~reasonloop.policy.hf.HFPolicy`
seeds it), stop ids, stop strings and token budget, and is recorded exactly as
HFPolicy records a turn (ids, log-probs and full-vocabulary entropies at the sampling
temperature, :func:`~reasonloop.policy.hf_sampling.pick_tokens` for both). A row's
tokens depend on its own prompt and generator only, never on the rest of the batch.
Batched kernels round differently from single-row ones, so log-probs agree with
HFPolicy's to float rounding, not bit for bit.

Prompts that share a prefix (a GRPO group's samples share their whole prompt, later
turns the prompt and often more) encode it once: :func:`~reasonloop.training.prefixes.shared_prefixes` groups the
rows, the prefixes are encoded as a ``[C, Wp]`` batch, their caches are copied to
the rows that share them, and the rows' own suffixes are encoded as ``[B, Ws]`` on
top (padding between a row's prefix and suffix is masked). This is used when it
encodes fewer positions than one ``[B, W]`` prefill.

Shapes: ``ids``/``mask`` left padded, positions counted over real tokens only;
decode steps feed ``[B, 1]``; finished rows keep being fed a pad token (their
outputs are ignored) so the cache stays rectangular.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from reasonloop.errors import PolicyError
from reasonloop.policy.base import Completion, Context, SamplingParams, ToolSpec
from reasonloop.policy.hf import HFPolicy, HFPolicyConfig
from reasonloop.policy.hf_forward import cache_of, keep_logits, with_cache
from reasonloop.policy.hf_sampling import IncrementalDecoder, LoopSettings, SampleResult, find_stop, pick_tokens
from reasonloop.training.engine import EngineStats, PromptMemo
from reasonloop.training.prefixes import left_padded, positions_of, shared_prefixes
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

    def push(self, token: int, logprob: float, entropy: float) -> None:
        """Record one sampled token; set ``result`` when the row stops."""
        s = self.settings
        self.ids.append(token)
        self.logprobs.append(logprob)
        self.entropies.append(entropy)
        if token in s.stop_ids:
            self._finish("stop", self.decoder.tokenizer.convert_ids_to_tokens(token))
            return
        seen = len(self.decoder.text)
        if self.decoder.push(token) and s.stop_strings:
            stop = find_stop(self.decoder.text, s.stop_strings, max(0, seen - self.longest_stop + 1))
            if stop is not None:
                self._finish("stop", stop)
                return
        if len(self.ids) >= s.max_tokens:
            self._finish("length", None)

    def _finish(self, reason: str, stop: str | None) -> None:
        self.result = SampleResult(list(self.ids), list(self.logprobs), list(self.entropies), reason, stop)


def _prefill(model: Any, prompts: Sequence[Sequence[int]], pad_id: int,
             device: Any) -> tuple[Any, torch.Tensor, torch.Tensor, int]:
    """Encode the prompts: ``(output, mask [B, W'], last positions [B, 1], positions computed)``."""
    b, width = len(prompts), max(len(p) for p in prompts)
    runs = shared_prefixes(prompts)
    prefix_of = [0] * b
    run_of = [0] * b
    for r, (p, rows) in enumerate(runs):
        for i in rows:
            prefix_of[i], run_of[i] = p, r
    wp = max(p for p, _ in runs)
    ws = max(len(q) - prefix_of[i] for i, q in enumerate(prompts))
    if len(runs) * wp + b * ws >= b * width:  # sharing would encode no fewer positions
        ids, mask = left_padded(prompts, width, pad_id)
        ids, mask = ids.to(device), mask.to(device)
        positions = positions_of(mask)
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **keep_logits(model, 1))
        return out, mask, positions[:, -1:], b * width
    ids, head = left_padded([prompts[rows[0]][:p] for p, rows in runs], wp, pad_id)
    ids, head = ids.to(device), head.to(device)
    out = model(input_ids=ids, attention_mask=head, position_ids=positions_of(head), use_cache=True,
                **keep_logits(model, 1))
    which = torch.tensor(run_of, device=device)
    cache = cache_of(out)
    cache.batch_select_indices(which)  # [C, ...] -> [B, ...]: each row gets its run's prefix
    ids, tail = left_padded([q[prefix_of[i]:] for i, q in enumerate(prompts)], ws, pad_id)
    ids, tail = ids.to(device), tail.to(device)
    positions = positions_of(tail) + torch.tensor(prefix_of, device=device)[:, None]
    mask = torch.cat([head[which], tail], dim=1)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, **with_cache(model, cache), use_cache=True,
                **keep_logits(model, 1))
    return out, mask, positions[:, -1:], len(runs) * wp + b * ws


@torch.inference_mode()
def sample_batch(model: Any, tokenizer: Any, prompts: Sequence[Sequence[int]], settings: Sequence[LoopSettings],
                 pad_id: int) -> tuple[list[SampleResult], int]:
    """Sample every prompt's continuation in one batch.

    Returns:
        One :class:`SampleResult` per prompt, and the number of token positions the
        model computed (padding included).
    """
    device = next(model.parameters()).device
    b = len(prompts)
    rows = [_Row(settings=s, decoder=IncrementalDecoder(tokenizer), longest_stop=max((len(x) for x in s.stop_strings), default=0))
            for s in settings]
    out, mask, last_pos, computed = _prefill(model, prompts, pad_id, device)
    next_pos = last_pos + 1
    while True:
        live = [i for i, row in enumerate(rows) if row.result is None]
        logits = out.logits[:, -1]
        picked = pick_tokens(logits if len(live) == b else logits[live], [rows[i].settings for i in live])
        fed = [pad_id] * b
        for i, token, logprob, entropy in zip(live, *picked, strict=True):
            rows[i].push(token, logprob, entropy)
            fed[i] = token
        if all(row.result is not None for row in rows):
            break
        mask = torch.cat([mask, torch.ones((b, 1), dtype=mask.dtype, device=device)], dim=1)
        out = model(input_ids=torch.tensor(fed, device=device)[:, None], attention_mask=mask,
                    position_ids=next_pos, **with_cache(model, cache_of(out)), use_cache=True)
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
        self._prompts = PromptMemo(super().start)
        self._batcher: TurnBatcher[_Request, Completion] = TurnBatcher(self._run, max_batch=max_batch,
                                                                        window_s=window_s)
        self.stats = EngineStats()
        self._pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)

    @property
    def module(self) -> Any:
        """The underlying transformers model."""
        return self.model

    def sync_weights(self) -> None:
        """Nothing the weights shape is cached across calls: the next batch reads the new weights."""

    def start(self, messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]) -> list[int]:
        """:meth:`HFPolicy.start`, rendered and tokenised once per distinct prompt."""
        return self._prompts(messages, tools)

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
