"""ARPO's branching rule against numbers worked out by hand."""

import random

import pytest

from reasonloop.errors import UnknownNameError
from reasonloop.training.branching import BRANCH_RULES, BranchConfig, branch_probability, decide_branch, window_entropy


def test_probability_by_hand():
    cfg = BranchConfig()  # alpha 0.5, beta 0.2, tau 0.5
    assert branch_probability(2.0, 1.0, cfg) == pytest.approx((0.7, 1.0))
    assert branch_probability(0.5, 1.0, cfg) == pytest.approx((0.4, -0.5))
    assert branch_probability(10.0, 1.0, cfg)[0] == 1.0
    assert branch_probability(-10.0, 1.0, cfg)[0] == 0.0
    rel = BranchConfig(normalise="relative")
    assert branch_probability(3.0, 2.0, rel) == pytest.approx((0.6, 0.5))
    assert branch_probability(3.0, 0.0, rel) == pytest.approx((0.5, 0.0))
    aepo = BranchConfig(consecutive_penalty=0.05)
    assert branch_probability(2.0, 1.0, aepo, consecutive=2)[0] == pytest.approx(0.7 * 0.9)


def test_paper_mode_is_a_threshold():
    cfg = BranchConfig(mode="paper")
    up = decide_branch(2.0, 1.0, cfg)
    assert up.branch and up.probability == pytest.approx(0.7) and up.u is None
    assert not decide_branch(1.0, 1.0, cfg).branch  # P = 0.5 is not > tau = 0.5
    assert decide_branch(1.0, 1.0, BranchConfig(tau=0.4)).branch


def test_sampled_mode_draws_u():
    cfg = BranchConfig(mode="sampled")
    no = decide_branch(2.0, 1.0, cfg, rng=random.Random(0))  # u = 0.8444 > 0.7
    assert not no.branch and no.u == pytest.approx(0.8444218515250481)
    yes = decide_branch(2.0, 1.0, cfg, rng=random.Random(1))  # u = 0.1344 < 0.7
    assert yes.branch and yes.as_dict()["u"] == pytest.approx(0.13436424411240122)


def test_window_entropy_and_config_checks():
    assert window_entropy([1.0, 2.0, 3.0, 100.0], window=3) == 2.0
    assert window_entropy([], window=3) == 0.0
    assert window_entropy([float("nan"), 2.0], window=2) == 2.0
    with pytest.raises(ValueError, match="mode"):
        BranchConfig(mode="greedy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="window"):
        BranchConfig(window=0)
    with pytest.raises(UnknownNameError, match="valid: paper, sampled"):
        BRANCH_RULES.get("greedy")
