"""Policy losses against numbers worked out by hand."""

import math

import pytest

torch = pytest.importorskip("torch")

from reasonloop.training.losses import (  # noqa: E402
    PolicyLossConfig,
    aggregate,
    entropy_from_logits,
    low_var_kl,
    policy_loss,
    token_logprobs,
)


def _row(*values):
    return torch.tensor([list(values)], dtype=torch.float64)


def test_ppo_clip_and_dual_clip_by_hand():
    old = _row(0.0, 0.0, 0.0, 0.0)
    logp = _row(math.log(1.5), math.log(1.5), math.log(4.0), math.log(0.5))
    adv = _row(1.0, -1.0, -1.0, 1.0)
    mask = _row(1, 1, 1, 1)
    loss, m = policy_loss(logp, old, adv, mask)
    # per token: max(-A r, -A clip(r)) = -1.2, 1.5, 4.0 -> dual clip 3.0, -0.5
    assert float(loss) == pytest.approx((-1.2 + 1.5 + 3.0 - 0.5) / 4)
    assert m["clip_frac"] == pytest.approx(0.25)
    assert m["dual_clipped"] == pytest.approx(0.25)
    no_dual, _ = policy_loss(logp, old, adv, mask, config=PolicyLossConfig(dual_clip=None))
    assert float(no_dual) == pytest.approx((-1.2 + 1.5 + 4.0 - 0.5) / 4)


def test_masked_tokens_do_not_count_and_gradients_flow():
    logp = _row(0.0, 0.0).requires_grad_(True)
    loss, _ = policy_loss(logp, _row(0.0, 0.0), _row(2.0, 100.0), _row(1, 0))
    loss.backward()
    assert float(loss.detach()) == pytest.approx(-2.0)
    assert logp.grad.tolist() == [[-2.0, 0.0]]  # d(-A r)/dlogp = -A r at r = 1


def test_aggregations():
    values = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    assert float(aggregate(values, mask, "token-mean")) == pytest.approx(10 / 4)
    assert float(aggregate(values, mask, "seq-mean-token-mean")) == pytest.approx(3.0)
    assert float(aggregate(values, mask, "seq-mean-token-sum")) == pytest.approx(5.0)
    assert float(aggregate(values, torch.zeros_like(mask))) == 0.0


def test_kl_entropy_and_logprobs_by_hand():
    assert float(low_var_kl(_row(0.0), _row(math.log(0.5)))) == pytest.approx(0.5 + math.log(2) - 1)
    assert float(low_var_kl(_row(-1.0), _row(-1.0))) == 0.0
    assert float(entropy_from_logits(torch.zeros(4))) == pytest.approx(math.log(4))
    logits = torch.tensor([[[0.0, math.log(3.0)]]])
    assert float(token_logprobs(logits, torch.tensor([[1]]))) == pytest.approx(math.log(0.75))
    cfg = PolicyLossConfig(kl_coef=0.5, entropy_coef=0.1)
    loss, m = policy_loss(_row(0.0), _row(0.0), _row(1.0), _row(1), config=cfg, ref_logp=_row(math.log(0.5)),
                          entropy=_row(2.0))
    assert float(loss) == pytest.approx(-1.0 + 0.5 * (0.5 + math.log(2) - 1) - 0.1 * 2.0)
    assert set(m) >= {"kl", "entropy", "pg_loss", "loss"}
    with pytest.raises(ValueError, match="ref_logp"):
        policy_loss(_row(0.0), _row(0.0), _row(1.0), _row(1), config=PolicyLossConfig(kl_coef=0.1))


def test_clip_cov_detaches_selected_tokens_and_kl_cov_penalises_top_covariance():
    logp = torch.tensor([[1.0, -1.0, 0.0, 0.0]], requires_grad=True)
    adv = torch.tensor([[2.0, -0.5, 0.5, 0.5]])
    mask = torch.ones(1, 4)
    cfg = PolicyLossConfig(cov_fraction=0.25, cov_bounds=(1.0, 5.0), dual_clip=None, clip_low=10.0, clip_high=10.0)
    loss, m = policy_loss(logp, logp.detach(), adv, mask, config=cfg, kind="clip_cov", generator=torch.Generator().manual_seed(0))
    loss.backward()
    # mean A = 0.625; covariances: (1)(1.375), (-1)(-1.125), 0, 0 -> one of tokens 0/1 is detached
    assert m["cov_selected"] == pytest.approx(0.25)
    grads = logp.grad.tolist()[0]
    assert sorted([grads[0] == 0.0, grads[1] == 0.0]) == [False, True]
    assert grads[2] == pytest.approx(-0.5 / 4) and grads[3] == pytest.approx(-0.5 / 4)
    old = torch.tensor([[0.5, -1.0, 0.0, 0.0]])
    kl_loss, m2 = policy_loss(logp.detach(), old, adv, mask, config=cfg, kind="kl_cov")
    ratio0 = math.exp(0.5)
    plain = (-2.0 * ratio0 + 0.5 - 0.5 - 0.5) / 4
    assert m2["cov_selected"] == pytest.approx(0.25)
    assert float(kl_loss) == pytest.approx(plain + 0.5 / 4)  # |logp - old| = 0.5 on the top token 0


def test_config_checks():
    with pytest.raises(ValueError, match="dual_clip"):
        PolicyLossConfig(dual_clip=0.5)


def test_gradient_preserving_clip_by_hand():
    old = _row(0.0, 0.0, 0.0)
    logp = _row(math.log(1.5), math.log(0.5), math.log(1.1)).requires_grad_(True)
    adv = _row(1.0, -1.0, 1.0)
    mask = _row(1, 1, 1)
    loss, m = policy_loss(logp, old, adv, mask, kind="gp_clip")
    # values as PPO: -1.2 (clipped at 1.2), +0.8 (clipped at 0.8), -1.1 (inside)
    assert float(loss) == pytest.approx((-1.2 + 0.8 - 1.1) / 3)
    assert m["clip_frac"] == pytest.approx(2 / 3)
    loss.backward()
    # d/dlogp of -A * bound * r / sg(r) = -A * bound; inside: -A * r
    assert logp.grad[0].tolist() == pytest.approx([-1.2 / 3, 0.8 / 3, -1.1 / 3])
    ppo_logp = logp.detach().clone().requires_grad_(True)
    policy_loss(ppo_logp, old, adv, mask)[0].backward()
    assert ppo_logp.grad[0].tolist() == pytest.approx([0.0, 0.0, -1.1 / 3])  # PPO drops the clipped tokens
