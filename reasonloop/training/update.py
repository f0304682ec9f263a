"""One policy update over a step's rows: old log-probs, then PPO epochs with gradient accumulation.

Shapes: rows are right-padded to ``[B, T]``; position ``t`` of the logits scores
token ``t + 1``, so the per-token tensors are ``[B, T - 1]`` (targets ``ids[:, 1:]``),
and the loss reads their columns from ``s`` on, the first target any row of the
micro-batch trains on (:func:`scored_from`): the shared prompt before it is encoded
but never projected onto the vocabulary. Logits are divided by the temperature the
tokens were sampled at, which is how the sampler computed its log-probs.

The step's loss is the token mean over all weighted tokens of all rows; each
micro-batch contributes its token mean times its share of the weight, so gradient
accumulation gives the same gradient as one big batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from reasonloop.policy.hf_forward import cache_of, keep_logits, with_cache
from reasonloop.training.batch import Row
from reasonloop.training.distributed import DataParallel
from reasonloop.training.losses import PolicyLossConfig, entropy_from_logits, policy_loss, token_logprobs
from reasonloop.training.prefixes import left_padded, positions_of, right_padded, shared_prefixes

__all__ = ["UpdateSettings", "padded", "policy_update", "row_logprobs", "scored_from"]

_SUMMED = ("loss", "pg_loss", "clip_frac", "approx_kl", "ratio")
"""Loss metrics every rank reports (weighted by its share of the global loss weight)."""


@dataclass(frozen=True, kw_only=True)
class UpdateSettings:
    """How :func:`policy_update` optimises."""

    loss: PolicyLossConfig
    kind: str = "ppo"
    """Registered loss (``ppo``, ``clip_cov``, ``kl_cov``)."""
    micro_batch_size: int = 8
    max_grad_norm: float = 1.0
    ppo_epochs: int = 1
    old_logprobs: str = "recompute"
    """``recompute`` (the trainer's model, before the update) or ``sampler`` (recorded)."""
    bf16: bool = False
    """Autocast the forward passes to bfloat16 (CUDA)."""


def padded(rows: Sequence[Row], pad_id: int, device: Any) -> dict[str, torch.Tensor]:
    """``ids``/``attn`` ``[B, T]`` and ``weights``/``adv``/``sampler`` ``[B, T-1]`` (shifted to targets), ``temp`` ``[B]``."""
    width = max(len(r.input_ids) for r in rows)
    b = len(rows)
    ids = torch.full((b, width), pad_id, dtype=torch.long)
    attn = torch.zeros((b, width), dtype=torch.long)
    weights = torch.zeros((b, width), dtype=torch.float32)
    adv = torch.zeros((b, width), dtype=torch.float32)
    sampler = torch.zeros((b, width), dtype=torch.float32)
    for i, r in enumerate(rows):
        n = len(r.input_ids)
        ids[i, :n] = torch.tensor(r.input_ids)
        attn[i, :n] = 1
        weights[i, :n] = torch.tensor(r.weights)
        adv[i, :n] = torch.tensor(r.advantages)
        sampler[i, :n] = torch.tensor(r.sampler_logprobs)
    temp = torch.tensor([r.temperature for r in rows], dtype=torch.float32)
    out = {"ids": ids, "attn": attn, "weights": weights[:, 1:], "adv": adv[:, 1:], "sampler": sampler[:, 1:], "temp": temp}
    return {k: v.to(device) for k, v in out.items()}


def scored_from(batch: dict[str, torch.Tensor]) -> int:
    """First target column of ``batch`` with a loss weight (``0`` when none has one).

    Columns before it are prompt and forced tokens of every row: they need hidden
    states (later tokens attend to them) but no logits, log-probs or gradients.
    """
    weighted = (batch["weights"] > 0).any(dim=0).nonzero()
    return int(weighted[0, 0]) if len(weighted) else 0


def row_logprobs(model: Any, batch: dict[str, torch.Tensor], *, entropy: bool = False, bf16: bool = False,
                 start: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs ``[B, T-1-start]`` of the batch's target columns ``start..`` (and entropies if asked)
    at the rows' temperatures; the vocabulary projection runs for those positions only."""
    cast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 and batch["ids"].is_cuda else nullcontext()
    keep = batch["ids"].shape[1] - start  # positions start..T-1 score targets start+1..T (the last: nothing)
    with cast:
        logits = model(input_ids=batch["ids"], attention_mask=batch["attn"],
                       **keep_logits(model, keep if start > 0 else 0)).logits[:, -keep:][:, :-1]
    logits = logits.float() / batch["temp"].view(-1, 1, 1)
    logp = token_logprobs(logits, batch["ids"][:, start + 1 :])
    return logp, (entropy_from_logits(logits) if entropy else None)


def _micro(rows: Sequence[Row], size: int) -> list[list[Row]]:
    """Micro-batches of ``size`` rows; with several, rows of similar length share one (less padding)."""
    if len(rows) > size:
        rows = sorted(rows, key=lambda r: len(r.input_ids))
    return [list(rows[i : i + size]) for i in range(0, len(rows), size)]


def _narrowed(b: dict[str, torch.Tensor], start: int) -> dict[str, torch.Tensor]:
    """``b`` with its per-target tensors cut to the columns ``start..``."""
    return {k: (v[:, start:] if k in ("weights", "adv", "sampler") else v) for k, v in b.items()}


def _checkpointing(model: Any) -> bool:
    """Whether activation checkpointing is on (it turns caches off: no shared-prefix pass then)."""
    return any(getattr(m, "gradient_checkpointing", False) is True for m in model.modules())


def _sharing(rows: Sequence[Row], full: dict[str, torch.Tensor]) -> tuple[list[int], list[tuple[int, list[int]]]] | None:
    """``(first weighted column per row, runs)`` when encoding shared prefixes once is cheaper, else ``None``.

    A row's prefix stops at its first weighted target column ``t`` (position ``t``
    predicts it), so every position whose logits the loss reads is in the row's suffix.
    """
    weighted = full["weights"] > 0  # [B, T-1]
    lens = [len(r.input_ids) for r in rows]
    first = [int(w.nonzero()[0, 0]) if bool(w.any()) else n - 1 for w, n in zip(weighted, lens, strict=True)]
    runs = shared_prefixes([r.input_ids[: t + 1] for r, t in zip(rows, first, strict=True)])
    prefix = {i: p for p, members in runs for i in members}
    wp, ws = max(p for p, _ in runs), max(n - prefix[i] for i, n in enumerate(lens))
    if len(runs) == len(rows) or len(runs) * wp + len(rows) * ws >= len(rows) * max(lens):
        return None
    return first, runs


def _shared_logprobs(model: Any, rows: Sequence[Row], full: dict[str, torch.Tensor], plan: tuple[list[int], list[tuple[int, list[int]]]],
                     pad_id: int, *, entropy: bool) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, torch.Tensor]]:
    """Log-probs with each shared prefix encoded once: ``[C, Wp]`` prefixes, then ``[B, Ws]`` suffixes on
    their copied caches; the loss tensors come back in suffix coordinates ``[B, K]`` (gathered from ``full``)."""
    first, runs = plan
    device = full["ids"].device
    prefix, run_of = [0] * len(rows), [0] * len(rows)
    for r, (p, members) in enumerate(runs):
        for i in members:
            prefix[i], run_of[i] = p, r
    head_ids, head = (t.to(device) for t in left_padded([rows[m[0]].input_ids[:p] for p, m in runs],
                                                         max(p for p, _ in runs), pad_id))
    out = model(input_ids=head_ids, attention_mask=head, position_ids=positions_of(head), use_cache=True,
                **keep_logits(model, 1))
    which = torch.tensor(run_of, device=device)
    cache = cache_of(out)
    cache.batch_select_indices(which)  # [C, ...] -> [B, ...], differentiable: prefix gradients add up
    width = max(len(r.input_ids) - p for r, p in zip(rows, prefix, strict=True))
    tail_ids, tail = (t.to(device) for t in right_padded([r.input_ids[p:] for r, p in zip(rows, prefix, strict=True)],
                                                         width, pad_id))
    offset = min(t - p for t, p in zip(first, prefix, strict=True))  # first suffix column the loss reads
    keep = width - offset
    starts = torch.tensor(prefix, device=device)[:, None]
    logits = model(input_ids=tail_ids, attention_mask=torch.cat([head[which], tail], dim=1),
                   position_ids=starts + torch.arange(width, device=device)[None], **with_cache(model, cache), use_cache=True,
                   **keep_logits(model, keep)).logits[:, -keep:]
    logits = logits.float() / full["temp"].view(-1, 1, 1)
    targets = torch.cat([tail_ids[:, 1:], torch.full_like(tail_ids[:, :1], pad_id)], dim=1)[:, offset:]
    logp = token_logprobs(logits, targets)
    cols = starts + offset + torch.arange(keep, device=device)[None]  # [B, K]: each column's target column in full
    lens = torch.tensor([len(r.input_ids) for r in rows], device=device)[:, None]
    valid = (cols < lens - 1).float()
    cols = cols.clamp_max(full["weights"].shape[1] - 1)
    b = {**full, **{k: full[k].gather(1, cols) * valid for k in ("weights", "adv", "sampler")}}
    return logp, (entropy_from_logits(logits) if entropy else None), b


def _scored(model: Any, rows: Sequence[Row], full: dict[str, torch.Tensor], pad_id: int, *, entropy: bool = False,
            bf16: bool = False) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, torch.Tensor]]:
    """``(logp, entropy, b)``: log-probs of the columns the loss reads and ``full``'s loss tensors cut to the same columns."""
    cast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 and full["ids"].is_cuda else nullcontext()
    plan = None if _checkpointing(model) else _sharing(rows, full)
    with cast:
        if plan is not None:
            return _shared_logprobs(model, rows, full, plan, pad_id, entropy=entropy)
    start = scored_from(full)
    logp, ent = row_logprobs(model, full, entropy=entropy, bf16=bf16, start=start)
    return logp, ent, _narrowed(full, start)


@torch.no_grad()
def _old_logprobs(model: Any, micro: list[list[Row]], pad_id: int, device: Any, s: UpdateSettings) -> list[torch.Tensor]:
    model.eval()
    return [_scored(model, m, padded(m, pad_id, device), pad_id, bf16=s.bf16)[0] for m in micro]


def policy_update(model: Any, optimizer: Any, rows: Sequence[Row], settings: UpdateSettings, *, pad_id: int,
                  ref_model: Any = None, dp: DataParallel | None = None) -> dict[str, float]:
    """Optimise ``model`` on ``rows`` (``ppo_epochs`` optimiser steps); returns the metrics.

    With ``dp`` (several processes), ``rows`` are this rank's: the loss is scaled by
    the weight of all ranks' rows and the gradients are summed across ranks before
    clipping, so every rank takes the single-process step. Every rank must call this
    once per step, with or without rows.

    ``logprob_diff_max`` is the largest gap between the recomputed and the sampler's
    log-probs on trained tokens: near zero when the trained tokens are the sampled ones.
    """
    dp = dp or DataParallel()
    device = next(model.parameters()).device
    micro = _micro(rows, settings.micro_batch_size)
    total_w = dp.all_sum(sum(sum(r.weights[1:]) for r in rows))
    if total_w <= 0:
        return {"loss": 0.0, "trained_tokens": 0.0, "grad_norm": 0.0, "logprob_diff_max": 0.0}
    # One pass with recomputed old log-probs: the old policy is the current one, so
    # logp.detach() is exactly what a separate no-grad pass would return (no dropout
    # in the models trained here) and that pass is skipped.
    single = settings.ppo_epochs == 1 and settings.old_logprobs == "recompute"
    old: list[torch.Tensor | None] = [None] * len(micro) if single else list(_old_logprobs(model, micro, pad_id, device, settings))
    diff = 0.0
    sums: dict[str, float] = {}
    grad_norm = 0.0
    model.train()
    try:
        for _ in range(settings.ppo_epochs):
            optimizer.zero_grad(set_to_none=True)
            for m, lp in zip(micro, old, strict=True):
                full = padded(m, pad_id, device)
                share = float(full["weights"].sum()) / total_w
                if share == 0.0:
                    continue
                # The columns read depend on the rows only: the same in every epoch and for the old log-probs.
                logp, ent, b = _scored(model, m, full, pad_id, entropy=settings.loss.entropy_coef > 0,
                                       bf16=settings.bf16)
                recomputed = logp.detach() if lp is None else lp
                gap = ((recomputed - b["sampler"]).abs() * (b["weights"] > 0)).max()
                diff = max(diff, float(gap))
                old_lp = recomputed if settings.old_logprobs == "recompute" else b["sampler"]
                ref = None
                if ref_model is not None and settings.loss.kl_coef > 0:
                    with torch.no_grad():
                        ref = _scored(ref_model, m, full, pad_id, bf16=settings.bf16)[0]
                loss, metrics = policy_loss(logp, old_lp, b["adv"], b["weights"], config=settings.loss,
                                            kind=settings.kind, ref_logp=ref, entropy=ent)
                (loss * share).backward()
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + v * share / settings.ppo_epochs
            dp.sum_grads(model.parameters())
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm))
            optimizer.step()
    finally:
        model.eval()
    for key in _SUMMED:  # shares are of the global weight: the ranks' sums add up
        sums[key] = dp.all_sum(sums.get(key, 0.0))
    return {**sums, "grad_norm": grad_norm, "trained_tokens": float(total_w), "logprob_diff_max": diff}
