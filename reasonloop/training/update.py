"""One policy update over a step's rows: old log-probs, then PPO epochs with gradient accumulation.

Shapes: rows are right-padded to ``[B, T]``; position ``t`` of the logits scores
token ``t + 1``, so every per-token tensor of the loss is ``[B, T - 1]`` (targets
``ids[:, 1:]``). Logits are divided by the temperature the tokens were sampled at,
which is how the sampler computed its log-probs.

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

from reasonloop.training.batch import Row
from reasonloop.training.distributed import DataParallel
from reasonloop.training.losses import PolicyLossConfig, entropy_from_logits, policy_loss, token_logprobs

__all__ = ["UpdateSettings", "padded", "policy_update", "row_logprobs"]

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


def row_logprobs(model: Any, batch: dict[str, torch.Tensor], *, entropy: bool = False,
                 bf16: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs ``[B, T-1]`` of the batch's tokens (and entropies if asked) at the rows' temperatures."""
    cast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 and batch["ids"].is_cuda else nullcontext()
    with cast:
        logits = model(input_ids=batch["ids"], attention_mask=batch["attn"]).logits[:, :-1]
    logits = logits.float() / batch["temp"].view(-1, 1, 1)
    logp = token_logprobs(logits, batch["ids"][:, 1:])
    return logp, (entropy_from_logits(logits) if entropy else None)


def _micro(rows: Sequence[Row], size: int) -> list[list[Row]]:
    return [list(rows[i : i + size]) for i in range(0, len(rows), size)]


@torch.no_grad()
def _old_logprobs(model: Any, micro: list[list[Row]], pad_id: int, device: Any, s: UpdateSettings) -> list[torch.Tensor]:
    model.eval()
    return [row_logprobs(model, padded(m, pad_id, device), bf16=s.bf16)[0] for m in micro]


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
                b = padded(m, pad_id, device)
                share = float(b["weights"].sum()) / total_w
                if share == 0.0:
                    continue
                logp, ent = row_logprobs(model, b, entropy=settings.loss.entropy_coef > 0, bf16=settings.bf16)
                recomputed = logp.detach() if lp is None else lp
                gap = ((recomputed - b["sampler"]).abs() * (b["weights"] > 0)).max()
                diff = max(diff, float(gap))
                old_lp = recomputed if settings.old_logprobs == "recompute" else b["sampler"]
                ref = None
                if ref_model is not None and settings.loss.kl_coef > 0:
                    with torch.no_grad():
                        ref = row_logprobs(ref_model, b, bf16=settings.bf16)[0]
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
