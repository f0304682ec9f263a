"""Advantage estimators against numbers worked out by hand."""

import math

import pytest

from reasonloop.training.advantages import (
    ADVANTAGES,
    EMPGSettings,
    GroupShape,
    entropy_modulated,
    entropy_scaled,
    grpo_advantages,
    hard_advantages,
    rloo_advantages,
    standardise,
)

S3 = math.sqrt(1 / 3)  # sample std of [1, 0, 0, 1] and of [1, 0, 0]


def test_standardise_uses_sample_std():
    adv, metrics = standardise([1.0, 0.0, 0.0, 1.0], eps=0.0)
    assert adv == pytest.approx([0.5 / S3, -0.5 / S3, -0.5 / S3, 0.5 / S3])
    assert metrics["reward_mean"] == 0.5 and metrics["reward_std"] == pytest.approx(S3)
    assert standardise([1.0, 1.0])[0] == [0.0, 0.0]
    assert standardise([3.0])[0] == [0.0]


def test_grpo_broadcasts_to_every_step():
    adv, _ = grpo_advantages([1.0, 0.0, 0.0, 1.0], GroupShape.flat([2, 1, 3, 1]), 0.0)
    assert [len(r) for r in adv] == [2, 1, 3, 1]
    assert adv[0] == [(pytest.approx(0.866025, abs=1e-6), 1.0)] * 2
    assert all(w == 1.0 for row in adv for _, w in row)


def test_rloo_by_hand():
    adv, _ = rloo_advantages([1.0, 0.0, 0.0, 0.0], GroupShape.flat([1, 1, 1, 1]))
    assert [r[0][0] for r in adv] == pytest.approx([1.0, -1 / 3, -1 / 3, -1 / 3])


def test_hard_attribution_on_a_tree():
    # 0: root with 4 steps; 1 forks from 0 after 2 steps; 2 forks from 1 after 3 steps.
    shape = GroupShape(n_steps=[4, 4, 4], parents=[None, 0, 1], fork_steps=[None, 2, 3])
    adv, metrics = hard_advantages([1.0, 0.0, 0.0], shape, 0.0)
    a0, a1 = (2 / 3) / S3, (-1 / 3) / S3
    assert [a for a, _ in adv[0]] == pytest.approx([0.0, 0.0, a0, a0])  # steps 0-1 shared by all three
    assert [w for _, w in adv[0]] == [1.0] * 4
    assert [w for _, w in adv[1]] == [0.0, 0.0, 1.0, 1.0]  # copies of the root's steps count once
    assert adv[1][2][0] == pytest.approx(a1)  # step 2 of branch 1 is shared with branch 2: mean(a1, a1)
    assert [w for _, w in adv[2]] == [0.0, 0.0, 0.0, 1.0]
    assert adv[2][3][0] == pytest.approx(a1)
    assert metrics["shared_steps"] == 3.0


def test_soft_vs_hard_on_the_shared_prefix():
    shape = GroupShape(n_steps=[2, 2], parents=[None, 0], fork_steps=[None, 1])
    soft, _ = ADVANTAGES.get("grpo")([1.0, 0.0], shape, 0.0)
    hard, _ = ADVANTAGES.get("hard")([1.0, 0.0], shape, 0.0)
    # soft: the shared step is in both rows with opposite signs (they cancel in the sum)
    assert soft[0][0][0] + soft[1][0][0] == pytest.approx(0.0)
    # hard: counted once, with the mean advantage (0)
    assert hard[0][0] == (pytest.approx(0.0), 1.0) and hard[1][0] == (0.0, 0.0)


def test_shape_validation_and_entropy_scaling():
    with pytest.raises(ValueError, match="same length"):
        GroupShape(n_steps=[1], parents=[None, None], fork_steps=[None])
    with pytest.raises(ValueError, match="beyond the shared steps"):
        GroupShape(n_steps=[2, 2], parents=[None, 0], fork_steps=[None, 5])
    with pytest.raises(ValueError, match="set together"):
        GroupShape(n_steps=[2, 2], parents=[None, 0], fork_steps=[None, None])
    scaled = entropy_scaled([1.0, 1.0], [0.0, 2.0], scale=0.2)
    z = 1 / math.sqrt(2)  # standardised entropies are -0.7071, +0.7071
    assert scaled == pytest.approx([1 - 0.2 * z, 1 + 0.2 * z], abs=1e-5)


def test_empg_weights_confident_steps_up_uncertain_down_and_adds_the_clarity_bonus() -> None:
    # Policy-step entropies 0.0, 1.0 (trajectory 0) and 0.5 (trajectory 1) normalise to 0, 1, 0.5;
    # exp(-H) = 1, 0.367879, 0.606531 with mean 0.658137, so the weights are 1.519443, 0.558971,
    # 0.921586. Trajectory 0's first step leads to a step of H_norm 1: bonus 0.1 * exp(-1) = 0.036788.
    per_step = [[(1.0, 1.0), (1.0, 1.0), (1.0, 1.0)], [(-1.0, 1.0), (-1.0, 0.0)]]
    entropies: list[list[float | None]] = [[0.0, None, 1.0], [0.5, None]]
    out, metrics = entropy_modulated(per_step, entropies, EMPGSettings(k=1.0, k_future=1.0, zeta=0.1))
    assert out[0][0][0] == pytest.approx(1.519443 + 0.036788, abs=1e-5)
    assert out[0][1] == (1.0, 1.0)  # a tool step is left alone
    assert out[0][2][0] == pytest.approx(0.558971, abs=1e-5)  # last policy step: no bonus
    assert out[1][0][0] == pytest.approx(-0.921586, abs=1e-5)
    assert out[1][1] == (-1.0, 0.0)  # weights are kept
    assert metrics["empg_weight_max"] == pytest.approx(1.519443, abs=1e-5)
    assert metrics["empg_weight_min"] == pytest.approx(0.558971, abs=1e-5)


def test_empg_with_equal_entropies_keeps_advantages_and_rejects_misaligned_input() -> None:
    per_step = [[(0.5, 1.0), (0.5, 1.0)], [(-0.5, 1.0)]]
    out, _ = entropy_modulated(per_step, [[0.3, 0.3], [0.3]], EMPGSettings(zeta=0.0))
    assert out == per_step
    with pytest.raises(ValueError, match="advantages for"):
        entropy_modulated(per_step, [[0.3], [0.3]], EMPGSettings())
    with pytest.raises(ValueError, match=">= 0"):
        EMPGSettings(k=-1.0)
