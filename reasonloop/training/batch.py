"""Groups of scored trajectories -> training rows: ids, loss weights, advantages.

One row per trajectory, its ids exactly ``traj.token_ids()`` (what was sampled and
forced, never re-tokenised). A token's loss weight is its loss-mask bit times the
counted-once weight of its step from the advantage estimator; its advantage is its
step's. :func:`check_rows` proves the rows are the sampled tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reasonloop.training.advantages import ADVANTAGES, EMPGSettings, StepAdvantages, entropy_modulated, entropy_scaled
from reasonloop.training.rollout import Group
from reasonloop.trajectory.schema import PolicyStep, Trajectory
from reasonloop.trajectory.tensors import trajectory_to_tensors, verify_alignment

__all__ = ["Row", "check_rows", "group_advantages", "group_rows"]


@dataclass(frozen=True, kw_only=True)
class Row:
    """One trajectory as aligned per-token lists."""

    trajectory_id: str
    input_ids: list[int]
    weights: list[float]
    """Loss weight per token (0 on prompt, forced ids and counted-elsewhere copies)."""
    advantages: list[float]
    sampler_logprobs: list[float]
    """Log-probs recorded by the sampler (0.0 where not sampled)."""
    loss_mask: list[int]
    """``traj.loss_mask()`` (before the estimator's weights)."""
    temperature: float


def _trajectory_entropy(traj: Trajectory) -> float:
    values = [e for s in traj.policy_steps() for e in (s.entropies or [])]
    return sum(values) / len(values) if values else 0.0


def _step_entropies(traj: Trajectory) -> list[float | None]:
    """Mean token entropy of each policy step (``None`` for other steps and unrecorded entropies)."""
    out: list[float | None] = []
    for step in traj.steps:
        values = step.entropies if isinstance(step, PolicyStep) else None
        out.append(sum(values) / len(values) if values else None)
    return out


def group_advantages(group: Group, estimator: str, *, entropy_scale: float = 0.0,
                     empg: EMPGSettings | None = None) -> tuple[StepAdvantages, dict[str, float]]:
    """Per-step ``(advantage, weight)`` of a group's trajectories, by ``estimator``.

    With ``entropy_scale > 0`` (AEPO), every advantage of trajectory i is multiplied by
    ``1 + entropy_scale * z(H_i)``, H_i its mean token entropy. With ``empg``, each
    policy step's advantage is then modulated by its own entropy (EMPG).
    """
    rewards = [t.reward for t in group.trajectories]
    per_step, metrics = ADVANTAGES.get(estimator)(rewards, group.shape, 1e-6)
    if entropy_scale > 0 and len(rewards) > 1:
        ones = entropy_scaled([1.0] * len(rewards), [_trajectory_entropy(t) for t in group.trajectories], entropy_scale)
        per_step = [[(a * f, w) for a, w in row] for row, f in zip(per_step, ones, strict=True)]
    if empg is not None:
        per_step, extra = entropy_modulated(per_step, [_step_entropies(t) for t in group.trajectories], empg)
        metrics = {**metrics, **extra}
    return per_step, metrics


def _temperature(traj: Trajectory) -> float:
    for step in traj.policy_steps():
        t = float(step.sampling.get("temperature", 1.0))
        return t if t > 0 else 1.0
    return 1.0


def group_rows(group: Group, per_step: StepAdvantages) -> tuple[list[Row], list[str]]:
    """Rows of a group's trainable trajectories, and why others were skipped."""
    rows: list[Row] = []
    skipped: list[str] = []
    for traj, steps in zip(group.trajectories, per_step, strict=True):
        problems = verify_alignment(traj)
        if problems:
            skipped.append(f"{traj.id}: {problems[0]}")
            continue
        seq = trajectory_to_tensors(traj)
        weights, adv = [], []
        for bit, j in zip(seq.loss_mask, seq.step_index, strict=True):
            a, w = steps[j] if j >= 0 else (0.0, 0.0)
            weights.append(float(bit) * w)
            adv.append(a if bit else 0.0)
        rows.append(Row(trajectory_id=traj.id, input_ids=seq.input_ids, weights=weights, advantages=adv,
                        sampler_logprobs=seq.old_logprobs, loss_mask=seq.loss_mask, temperature=_temperature(traj)))
    return rows, skipped


def check_rows(trajectories: Sequence[Trajectory], rows: Sequence[Row]) -> list[str]:
    """Mismatches between rows and the tokens their trajectories sampled (empty: exact).

    Per trajectory: the row's ids are the recorded context, its mask-1 positions are
    exactly the policy steps' sampled ids, in order.
    """
    by_id = {t.id: t for t in trajectories}
    problems: list[str] = []
    for row in rows:
        traj = by_id.get(row.trajectory_id)
        if traj is None:
            problems.append(f"{row.trajectory_id}: no such trajectory")
            continue
        if row.input_ids != traj.token_ids():
            problems.append(f"{traj.id}: ids differ from the recorded context")
        sampled = [i for s in traj.steps if isinstance(s, PolicyStep) for i in s.token_ids]
        trained = [i for i, m in zip(row.input_ids, row.loss_mask, strict=True) if m]
        if trained != sampled:
            problems.append(f"{traj.id}: masked ids differ from the sampled ids")
    return problems

