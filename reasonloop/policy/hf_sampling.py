"""The token-by-token sampling loop behind :class:`reasonloop.policy.hf.HFPolicy`.

Imports torch at module level: only ``hf.py`` imports this module, inside its methods.

Per sampled token the loop records, from the same float32 logits it sampled from:

* the log-probability of the token under ``softmax(logits / T)``, the full-vocabulary
  distribution at the sampling temperature *before* top-p truncation (``T = 1`` when
  greedy), which is what a trainer recomputes from a forward pass with the same
  temperature;
* the entropy of that same distribution, over the whole vocabulary.

The prefix is encoded once; every further step feeds one token with the KV cache.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from reasonloop.errors import PolicyError
from reasonloop.policy.hf_forward import cache_of, keep_logits, with_cache

__all__ = [
    "IncrementalDecoder",
    "SampleResult",
    "find_stop",
    "pick_tokens",
    "sample_tokens",
    "score_tokens",
    "token_distribution",
    "top_p_probs",
]


def token_distribution(logits: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities and entropy of ``softmax(logits / T)``.

    Args:
        logits: ``(V,)`` raw next-token logits.
        temperature: Softmax temperature; ``0`` (greedy) scores with ``T = 1``.

    Returns:
        ``(logp (V,), entropy ())`` in float32.
    """
    scaled = logits.float() / (temperature if temperature > 0 else 1.0)
    logp = torch.log_softmax(scaled, dim=-1)
    entropy = torch.special.entr(logp.exp()).sum()
    return logp, entropy


def score_tokens(
    logits: torch.Tensor, input_ids: torch.Tensor, temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log-probs and entropies of a sequence, aligned with ``input_ids``.

    What a trainer recomputes for the ids the sampler recorded: position ``t`` holds
    ``log softmax(logits[t - 1] / T)[input_ids[t]]`` and that distribution's entropy;
    position 0 (nothing predicts it) holds 0. Same shapes and order as
    :class:`reasonloop.trajectory.tensors.TrainingSequence`, so multiply by the loss mask.

    Args:
        logits: ``(B, T, V)`` logits of a forward pass over ``input_ids``.
        input_ids: ``(B, T)`` ids.
        temperature: The sampling temperature the ids were drawn at (0 scores at 1).

    Returns:
        ``(logprobs (B, T), entropies (B, T))`` in float32.
    """
    logp = torch.log_softmax(logits[:, :-1].float() / (temperature if temperature > 0 else 1.0), dim=-1)
    picked = logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    entropy = torch.special.entr(logp.exp()).sum(-1)
    zero = torch.zeros_like(picked[:, :1])
    return torch.cat([zero, picked], dim=1), torch.cat([zero, entropy], dim=1)


def top_p_probs(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose mass reaches ``top_p``; renormalise.

    Args:
        probs: ``(V,)`` probabilities.
        top_p: Nucleus mass in (0, 1]; ``1`` returns ``probs`` unchanged.
    """
    if top_p >= 1.0:
        return probs
    sorted_p, order = torch.sort(probs, descending=True)
    mass_before = torch.cumsum(sorted_p, dim=-1) - sorted_p
    sorted_p = torch.where(mass_before < top_p, sorted_p, torch.zeros_like(sorted_p))
    kept = torch.zeros_like(probs).scatter(0, order, sorted_p)
    return kept / kept.sum()


def find_stop(text: str, stops: Sequence[str], search_from: int) -> str | None:
    """The first stop string found in ``text[search_from:]``, or ``None``."""
    best: tuple[int, str] | None = None
    for stop in stops:
        at = text.find(stop, search_from)
        if at >= 0 and (best is None or at < best[0]):
            best = (at, stop)
    return None if best is None else best[1]


_MAX_PENDING = 8
"""Ids a decoder holds back waiting for a character to complete; past this they are invalid bytes."""


@dataclass
class IncrementalDecoder:
    """Decodes a growing list of ids, emitting only whole characters.

    Decoding one token alone can differ from decoding it in context (a byte that
    starts a UTF-8 character, a leading-space marker), so each step decodes a short
    window: the text of ``ids[prefix:]`` minus that of ``ids[prefix:read]``.
    """

    tokenizer: Any
    ids: list[int] = field(default_factory=list)
    text: str = ""
    _prefix: int = 0
    _read: int = 0

    def _decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False))

    def push(self, token_id: int) -> str:
        """Add one id; return the newly completed text (may be empty)."""
        self.ids.append(token_id)
        before = self._decode(self.ids[self._prefix : self._read])
        after = self._decode(self.ids[self._prefix :])
        pending = len(self.ids) - self._prefix
        if (after.endswith("\ufffd") and pending < _MAX_PENDING) or not after.startswith(before):
            return ""  # an incomplete character: wait for the next bytes
        new = after[len(before) :]
        self._prefix, self._read = self._read, len(self.ids)
        self.text += new
        return new


@dataclass
class SampleResult:
    """What one sampling loop produced; lists are aligned per sampled token."""

    token_ids: list[int]
    logprobs: list[float]
    entropies: list[float]
    finish_reason: str
    """``stop`` (a turn-end token or a stop string) or ``length``."""
    stop: str | None = None
    """The stop string or turn-end token that ended the turn."""


@dataclass(frozen=True, kw_only=True)
class LoopSettings:
    """Everything :func:`sample_tokens` needs besides the model and the prompt."""

    temperature: float
    top_p: float
    max_tokens: int
    stop_ids: frozenset[int]
    stop_strings: tuple[str, ...]
    generator: torch.Generator | None


def pick_tokens(logits: torch.Tensor, settings: Sequence[LoopSettings]) -> tuple[list[int], list[float], list[float]]:
    """One token for every row of ``logits``, each row with its own settings and generator.

    Row ``i`` is scored by :func:`token_distribution` at its temperature and sampled as
    ``torch.multinomial(top_p_probs(p_i, top_p), 1, generator=g_i)`` samples it (the
    exponential race ``argmax(p_i / q_i)``, ``q_i ~ Exp(1)`` drawn from ``g_i``), or
    greedily from the raw logits at temperature 0. A row's draw uses its generator only,
    so its token does not depend on the other rows of the batch; the softmax, entropy
    and race run batched, with one host transfer per call.

    Args:
        logits: ``(B, V)`` next-token logits.
        settings: ``B`` rows' settings.

    Returns:
        ``(tokens, logprobs, entropies)``, one Python value per row.

    Raises:
        PolicyError: a row's distribution is not finite (the model produced inf or NaN).
    """
    logits = logits.float()
    temps = torch.tensor([s.temperature if s.temperature > 0 else 1.0 for s in settings], device=logits.device)
    logp = torch.log_softmax(logits / temps[:, None], dim=-1)  # (B, V)
    probs = logp.exp()
    entropy = torch.special.entr(probs).sum(-1)  # (B,)
    scores, races = [], []
    for i, s in enumerate(settings):
        if s.temperature == 0:
            scores.append(logits[i])
            races.append(torch.ones_like(probs[i]))
        else:
            row = top_p_probs(probs[i], s.top_p)
            scores.append(row)
            races.append(torch.empty_like(row).exponential_(1, generator=s.generator))
    tokens = (torch.stack(scores) / torch.stack(races)).argmax(-1)  # (B,)
    picked = logp.gather(-1, tokens[:, None]).squeeze(-1)
    out_tokens, out_logp, out_ent = tokens.tolist(), picked.tolist(), entropy.tolist()
    if not all(math.isfinite(e) for e in out_ent):
        raise PolicyError("the model produced non-finite logits (inf or NaN): nothing can be sampled")
    return [int(t) for t in out_tokens], [float(x) for x in out_logp], [float(e) for e in out_ent]


@torch.inference_mode()
def sample_tokens(model: Any, tokenizer: Any, prompt_ids: Sequence[int], settings: LoopSettings) -> SampleResult:
    """Sample up to ``settings.max_tokens`` ids continuing ``prompt_ids`` exactly.

    Args:
        model: A transformers causal LM (eval mode) on its device.
        tokenizer: Its tokenizer (for stop-string detection only).
        prompt_ids: The context, used as given (never re-tokenised).
        settings: Temperature, top-p, limits and stop conditions.

    Returns:
        The sampled ids with their log-probs, entropies and finish reason.
    """
    device = next(model.parameters()).device
    decoder = IncrementalDecoder(tokenizer)
    longest_stop = max((len(s) for s in settings.stop_strings), default=0)
    ids: list[int] = []
    logprobs: list[float] = []
    entropies: list[float] = []
    # Prefill: the whole prompt once.
    # Models that support it compute the vocabulary projection for the last position only.
    out = model(input_ids=torch.tensor([list(prompt_ids)], device=device), use_cache=True, **keep_logits(model, 1))
    while True:
        (token,), (logprob,), (entropy,) = pick_tokens(out.logits[:, -1], [settings])
        ids.append(token)
        logprobs.append(logprob)
        entropies.append(entropy)
        if token in settings.stop_ids:
            return SampleResult(ids, logprobs, entropies, "stop", tokenizer.convert_ids_to_tokens(token))
        seen = len(decoder.text)
        if decoder.push(token) and settings.stop_strings:
            stop = find_stop(decoder.text, settings.stop_strings, max(0, seen - longest_stop + 1))
            if stop is not None:
                return SampleResult(ids, logprobs, entropies, "stop", stop)
        if len(ids) >= settings.max_tokens:
            return SampleResult(ids, logprobs, entropies, "length")
        out = model(
            input_ids=torch.tensor([[token]], device=device),
            **with_cache(model, cache_of(out)),
            use_cache=True,
        )
