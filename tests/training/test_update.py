"""The policy update: encoding a group's shared prompt once gives the loss and gradients of encoding it per row."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")


def _rows() -> list[object]:
    from reasonloop.training.batch import Row

    prompt_a, prompt_b = list(range(5, 45)), [*list(range(5, 35)), 60, 61, 62]
    rows = []
    for i, (prompt, tail) in enumerate([(prompt_a, [70, 71, 72]), (prompt_a, [73, 74]), (prompt_a, [70, 75, 76, 77]),
                                         (prompt_b, [78, 79]), (prompt_b, [80, 81, 82, 83, 84]), ([90, 91], [92])]):
        ids = prompt + tail
        mask = [0] * len(prompt) + [1] * len(tail)
        rows.append(Row(trajectory_id=f"t{i}", input_ids=ids, weights=[float(m) for m in mask],
                        advantages=[(1.0 if i % 2 else -0.5) * m for m in mask],
                        sampler_logprobs=[-1.0 * m for m in mask], loss_mask=mask, temperature=0.8))
    return rows


def test_shared_prefix_pass_matches_the_per_row_pass() -> None:
    import torch

    from reasonloop.policy.tiny_model import build_tiny_model, build_tiny_tokenizer
    from reasonloop.training import update as u

    tokenizer = build_tiny_tokenizer()
    model = build_tiny_model(tokenizer, seed=3).train()
    rows = _rows()
    full = u.padded(rows, int(tokenizer.pad_token_id), "cpu")
    plan = u._sharing(rows, full)
    assert plan is not None and len(plan[1]) < len(rows)

    def loss_and_grads(shared: bool) -> tuple[float, torch.Tensor, torch.Tensor]:
        model.zero_grad()
        if shared:
            logp, ent, b = u._shared_logprobs(model, rows, full, plan, int(tokenizer.pad_token_id), entropy=True)
        else:
            start = u.scored_from(full)
            logp, ent = u.row_logprobs(model, full, entropy=True, start=start)
            b = u._narrowed(full, start)
        assert ent is not None
        w = b["weights"]
        loss = ((logp * b["adv"] + 0.1 * ent) * w).sum() / w.sum()
        loss.backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        return float(loss.detach()), grads, torch.sort(logp[w > 0]).values

    per_row, shared = loss_and_grads(False), loss_and_grads(True)
    assert shared[0] == pytest.approx(per_row[0], abs=1e-5)
    assert torch.allclose(shared[1], per_row[1], atol=1e-5) and float(per_row[1].abs().max()) > 0
    assert torch.allclose(shared[2], per_row[2], atol=1e-5)
    assert len(shared[2]) == sum(sum(r.loss_mask) for r in rows)
