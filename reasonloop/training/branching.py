"""ARPO's entropy-adaptive branching rule, as pure functions.

After a tool result is appended, the policy generates the next segment. With
``H_init`` the mean entropy of the first ``k`` tokens of the trajectory's first
segment and ``H_t`` that of the new segment:

    dH = H_t - H_init                      (or (H_t - H_init) / H_init, "relative")
    P  = clip(alpha + beta * dH, 0, 1)
    paper mode:    branch iff P > tau      (deterministic)
    sampled mode:  branch iff u < P,  u ~ U(0, 1)  (what the released code does)

AEPO adds a penalty on consecutive branching of the same prompt: P * (1 - 0.05 * l)
with ``l`` the number of branches already made in a row.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from reasonloop.registry import Registry

__all__ = [
    "BRANCH_RULES",
    "BranchConfig",
    "BranchDecision",
    "branch_probability",
    "decide_branch",
    "window_entropy",
]

BranchMode = Literal["paper", "sampled"]
Normalise = Literal["none", "relative"]


@dataclass(frozen=True, kw_only=True)
class BranchConfig:
    """Parameters of the branching rule (defaults are the paper's)."""

    alpha: float = 0.5
    """Base branch probability."""
    beta: float = 0.2
    """Weight of the entropy change."""
    tau: float = 0.5
    """Threshold of the deterministic (paper) mode."""
    mode: BranchMode = "paper"
    """``paper``: branch iff P > tau; ``sampled``: branch iff u < P."""
    window: int = 20
    """k: tokens at the start of a segment whose mean entropy is used."""
    normalise: Normalise = "none"
    """``relative`` divides dH by H_init (guarded against H_init = 0)."""
    consecutive_penalty: float = 0.0
    """AEPO: multiply P by (1 - penalty * l) after l consecutive branches (0.05 in AEPO)."""

    def __post_init__(self) -> None:
        if self.mode not in ("paper", "sampled"):
            raise ValueError(f"mode must be 'paper' or 'sampled', got {self.mode!r}")
        if self.normalise not in ("none", "relative"):
            raise ValueError(f"normalise must be 'none' or 'relative', got {self.normalise!r}")
        if self.window < 1:
            raise ValueError("window must be >= 1")
        if not 0 <= self.tau <= 1:
            raise ValueError("tau must be in [0, 1]")
        if not 0 <= self.consecutive_penalty <= 1:
            raise ValueError("consecutive_penalty must be in [0, 1]")


@dataclass(frozen=True, kw_only=True)
class BranchDecision:
    """One branching decision and everything that drove it (recorded in the trajectory)."""

    branch: bool
    probability: float
    h_init: float
    h_step: float
    delta: float
    mode: BranchMode
    u: float | None = None
    """The uniform draw of the sampled mode (``None`` in paper mode)."""

    def as_dict(self) -> dict[str, float | bool | str | None]:
        return {
            "branch": self.branch,
            "probability": self.probability,
            "h_init": self.h_init,
            "h_step": self.h_step,
            "delta": self.delta,
            "mode": self.mode,
            "u": self.u,
        }


def window_entropy(entropies: Sequence[float], window: int = 20) -> float:
    """Mean entropy of the first ``window`` tokens (0.0 for an empty segment)."""
    head = [e for e in entropies[:window] if not math.isnan(e)]
    return float(sum(head) / len(head)) if head else 0.0


def branch_probability(h_step: float, h_init: float, config: BranchConfig, consecutive: int = 0) -> tuple[float, float]:
    """Return ``(P, dH)`` for a segment with mean entropy ``h_step``."""
    delta = h_step - h_init
    if config.normalise == "relative":
        delta = delta / h_init if h_init > 1e-8 else 0.0
    p = min(1.0, max(0.0, config.alpha + config.beta * delta))
    if config.consecutive_penalty and consecutive > 0:
        p *= max(0.0, 1.0 - config.consecutive_penalty * consecutive)
    return p, delta


def _paper(p: float, config: BranchConfig, rng: random.Random | None) -> tuple[bool, float | None]:
    return p > config.tau, None


def _sampled(p: float, config: BranchConfig, rng: random.Random | None) -> tuple[bool, float | None]:
    u = (rng or random.Random()).random()
    return u < p, u


BRANCH_RULES: Registry = Registry("branch rule")
BRANCH_RULES.register("paper", _paper)
BRANCH_RULES.register("sampled", _sampled)


def decide_branch(
    h_step: float,
    h_init: float,
    config: BranchConfig,
    *,
    rng: random.Random | None = None,
    consecutive: int = 0,
) -> BranchDecision:
    """Decide whether to branch after a tool result.

    Args:
        h_step: Mean entropy of the first k tokens generated after the tool result.
        h_init: The trajectory's initial entropy (first k tokens of its first segment).
        config: The rule's parameters.
        rng: Source of the uniform draw in sampled mode (seed it for reproducibility).
        consecutive: Branches already made in a row for this prompt (AEPO penalty).
    """
    p, delta = branch_probability(h_step, h_init, config, consecutive)
    branch, u = BRANCH_RULES.get(config.mode)(p, config, rng)
    return BranchDecision(branch=branch, probability=p, h_init=h_init, h_step=h_step, delta=delta, mode=config.mode, u=u)
