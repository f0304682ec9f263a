"""Policy losses and token statistics, as pure torch functions.

Shapes: every per-token tensor is ``[B, T]`` (batch rows, positions) and aligned with
``mask`` (1 on tokens that count in the loss: sampled policy tokens, weighted by the
advantage estimator's counted-once weights). Each function returns
``(loss, metrics)`` with ``metrics`` a dict of Python floats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from reasonloop.registry import Registry

__all__ = [
    "LOSSES",
    "PolicyLossConfig",
    "aggregate",
    "entropy_from_logits",
    "low_var_kl",
    "policy_loss",
    "token_logprobs",
]

Aggregation = Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"]


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Full-vocabulary entropy per position: ``[..., V] -> [...]`` (nats)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Log-prob of each target under ``logits``: ``[B, T, V], [B, T] -> [B, T]``."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def aggregate(values: torch.Tensor, mask: torch.Tensor, how: Aggregation = "token-mean") -> torch.Tensor:
    """Reduce ``[B, T]`` values over masked tokens."""
    mask = mask.to(values.dtype)
    if how == "token-mean":
        return (values * mask).sum() / mask.sum().clamp_min(1.0)
    per_row_tokens = mask.sum(dim=-1)
    rows = per_row_tokens > 0
    if how == "seq-mean-token-mean":
        per_row = (values * mask).sum(dim=-1) / per_row_tokens.clamp_min(1.0)
    elif how == "seq-mean-token-sum":
        per_row = (values * mask).sum(dim=-1)
    else:
        raise ValueError(f"unknown aggregation {how!r}")
    return per_row[rows].mean() if rows.any() else values.sum() * 0.0


def low_var_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """The k3 estimator of KL(pi || ref) per token, clamped to [-10, 10]:
    exp(ref - logp) - (ref - logp) - 1 (non-negative, low variance)."""
    diff = (ref_logp - logp).clamp(-20.0, 20.0)
    return (diff.exp() - diff - 1.0).clamp(-10.0, 10.0)


@dataclass(frozen=True, kw_only=True)
class PolicyLossConfig:
    """Parameters of the policy-gradient losses (defaults follow ARPO.md)."""

    clip_low: float = 0.2
    """eps_low: ratio clipped below at 1 - clip_low."""
    clip_high: float = 0.2
    """eps_high: ratio clipped above at 1 + clip_high."""
    dual_clip: float | None = 3.0
    """c of dual clip: for negative advantages the loss is capped at -A * c (``None`` disables)."""
    aggregation: Aggregation = "token-mean"
    """How per-token losses are reduced."""
    kl_coef: float = 0.0
    """Weight of the low-variance KL to a reference policy (needs ``ref_logp``)."""
    entropy_coef: float = 0.0
    """Weight of the entropy bonus (subtracted from the loss; needs ``entropy``)."""
    cov_fraction: float = 2e-4
    """Clip-Cov: fraction of tokens whose gradient is detached; KL-Cov: fraction penalised."""
    cov_bounds: tuple[float, float] = (1.0, 5.0)
    """Clip-Cov: only tokens whose covariance lies in [low, high] may be detached."""
    kl_cov_coef: float = 1.0
    """KL-Cov: weight of |logp - old_logp| on the selected tokens."""

    def __post_init__(self) -> None:
        if self.clip_low < 0 or self.clip_high < 0:
            raise ValueError("clip_low and clip_high must be >= 0")
        if self.dual_clip is not None and self.dual_clip <= 1:
            raise ValueError("dual_clip must be > 1 (or None)")
        if not 0 <= self.cov_fraction <= 1:
            raise ValueError("cov_fraction must be in [0, 1]")


def _ppo_terms(
    logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, cfg: PolicyLossConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    log_ratio = (logp - old_logp).clamp(-20.0, 20.0)
    ratio = log_ratio.exp()
    unclipped = -adv * ratio
    clipped = -adv * ratio.clamp(1.0 - cfg.clip_low, 1.0 + cfg.clip_high)
    loss = torch.maximum(unclipped, clipped)
    stats = {"clipped": (clipped > unclipped).float(), "ratio": ratio, "approx_kl": -log_ratio}
    if cfg.dual_clip is not None:
        cap = -adv * cfg.dual_clip
        dual = torch.minimum(loss, cap)
        stats["dual_clipped"] = ((adv < 0) & (cap < loss)).float()
        loss = torch.where(adv < 0, dual, loss)
    return loss, stats


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> float:
    return float((x * mask).sum() / mask.sum().clamp_min(1.0))


def _covariance(logp: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-token centred product (logp - mean logp) * (A - mean A) over masked tokens."""
    m = mask.bool()
    lp = logp.detach()
    mean_lp = lp[m].mean() if m.any() else lp.new_zeros(())
    mean_a = adv[m].mean() if m.any() else adv.new_zeros(())
    return torch.where(m, (lp - mean_lp) * (adv - mean_a), torch.zeros_like(lp))


def _ppo(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor, cfg: PolicyLossConfig,
         generator: torch.Generator | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    return _ppo_terms(logp, old_logp, adv, cfg)


def _clip_cov(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor, cfg: PolicyLossConfig,
              generator: torch.Generator | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clip-Cov: detach the gradient of a random ``cov_fraction`` of tokens with high covariance."""
    loss, stats = _ppo_terms(logp, old_logp, adv, cfg)
    cov = _covariance(logp, adv, mask)
    low, high = cfg.cov_bounds
    candidates = ((cov >= low) & (cov <= high) & mask.bool()).nonzero(as_tuple=False)
    n_pick = int(cfg.cov_fraction * float(mask.sum()))
    chosen = torch.zeros_like(mask, dtype=torch.bool)
    if n_pick > 0 and len(candidates) > 0:
        order = torch.randperm(len(candidates), generator=generator)[: min(n_pick, len(candidates))]
        idx = candidates[order]
        chosen[idx[:, 0], idx[:, 1]] = True
    loss = torch.where(chosen, loss.detach(), loss)
    stats["cov_selected"] = chosen.float()
    return loss, stats


def _kl_cov(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor, cfg: PolicyLossConfig,
            generator: torch.Generator | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """KL-Cov: plain policy gradient plus ``kl_cov_coef * |logp - old|`` on the top-covariance tokens."""
    ratio = (logp - old_logp).clamp(-20.0, 20.0).exp()
    loss = -adv * ratio
    cov = _covariance(logp, adv, mask)
    n_pick = int(cfg.cov_fraction * float(mask.sum()))
    chosen = torch.zeros_like(mask, dtype=torch.bool)
    if n_pick > 0:
        flat = torch.where(mask.bool(), cov, torch.full_like(cov, float("-inf"))).flatten()
        top = torch.topk(flat, min(n_pick, flat.numel())).indices
        chosen.view(-1)[top] = True
    loss = loss + torch.where(chosen, cfg.kl_cov_coef * (logp - old_logp).abs(), torch.zeros_like(loss))
    return loss, {"cov_selected": chosen.float(), "ratio": ratio, "approx_kl": old_logp - logp}


def _gp_clip(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor, cfg: PolicyLossConfig,
             generator: torch.Generator | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Gradient-preserving clip (AEPO): PPO's clipped *value*, but clipped tokens keep a gradient.

    Where PPO clips (A > 0 and r > 1 + eps_high, or A < 0 and r < 1 - eps_low) the ratio
    is replaced by ``bound * r / sg(r)``: its value is the bound, its gradient
    ``bound * grad log pi`` instead of zero. Dual clip applies as in ``ppo``.
    """
    log_ratio = (logp - old_logp).clamp(-20.0, 20.0)
    ratio = log_ratio.exp()
    high, low = 1.0 + cfg.clip_high, 1.0 - cfg.clip_low
    over = (adv > 0) & (ratio > high)
    under = (adv < 0) & (ratio < low)
    kept = ratio / ratio.detach()
    effective = torch.where(over, high * kept, torch.where(under, low * kept, ratio))
    loss = -adv * effective
    stats = {"clipped": (over | under).float(), "ratio": ratio, "approx_kl": -log_ratio}
    if cfg.dual_clip is not None:
        cap = -adv * cfg.dual_clip
        stats["dual_clipped"] = ((adv < 0) & (cap < loss)).float()
        loss = torch.where((adv < 0) & (cap < loss), cap + 0.0 * loss, loss)
    return loss, stats


LossFn = Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]
LOSSES: Registry[LossFn] = Registry("policy loss")
LOSSES.register("ppo", _ppo)
LOSSES.register("clip_cov", _clip_cov)
LOSSES.register("kl_cov", _kl_cov)
LOSSES.register("gp_clip", _gp_clip)


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    config: PolicyLossConfig | None = None,
    kind: str = "ppo",
    ref_logp: torch.Tensor | None = None,
    entropy: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The total policy loss over masked tokens, and its metrics.

    Args:
        logp: ``[B, T]`` log-probs of the taken tokens under the current policy.
        old_logp: ``[B, T]`` log-probs under the policy that sampled them.
        advantages: ``[B, T]`` per-token advantages.
        mask: ``[B, T]`` loss weights (0/1, or counted-once weights).
        config: Clip ranges, aggregation and coefficients.
        kind: ``ppo`` (clip + dual clip), ``clip_cov`` or ``kl_cov``.
        ref_logp: ``[B, T]`` reference log-probs, for the KL term.
        entropy: ``[B, T]`` token entropies, for the entropy bonus.
        generator: Random source of Clip-Cov's selection.
    """
    cfg = config or PolicyLossConfig()
    mask = mask.to(logp.dtype)
    per_token, stats = LOSSES.get(kind)(logp, old_logp, advantages, mask, cfg, generator)
    loss = aggregate(per_token, mask, cfg.aggregation)
    metrics = {"pg_loss": float(loss.detach())}
    for name, value in stats.items():
        metrics[name if name != "clipped" else "clip_frac"] = _masked_mean(value.detach(), mask)
    if cfg.kl_coef > 0:
        if ref_logp is None:
            raise ValueError("kl_coef > 0 needs ref_logp")
        kl = aggregate(low_var_kl(logp, ref_logp), mask, cfg.aggregation)
        loss = loss + cfg.kl_coef * kl
        metrics["kl"] = float(kl.detach())
    if cfg.entropy_coef > 0:
        if entropy is None:
            raise ValueError("entropy_coef > 0 needs entropy")
        ent = aggregate(entropy, mask, cfg.aggregation)
        loss = loss - cfg.entropy_coef * ent
        metrics["entropy"] = float(ent.detach())
    metrics["loss"] = float(loss.detach())
    return loss, metrics
