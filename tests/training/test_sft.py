"""SFT on scripted-expert trajectories recorded through the real agent: loss on policy tokens only."""

from __future__ import annotations

import pytest

from reasonloop.trajectory.schema import PolicyStep, ToolStep

pytest.importorskip("torch")


def test_teacher_records_experts_and_sft_learns_them() -> None:
    from reasonloop.policy.hf import HFPolicyConfig
    from reasonloop.training.config import RolloutSection
    from reasonloop.training.engine import HFEngine
    from reasonloop.training.rewards import RewardStack
    from reasonloop.training.setup import record_experts
    from reasonloop.training.sft import SFTConfig, run_sft, sft_loss, sft_rows
    from reasonloop.training.toy import lookup_tasks, lookup_tool, toy_policy_pair

    tokenizer, model = toy_policy_pair(seed=1)
    engine = HFEngine(model, tokenizer, HFPolicyConfig(device="cpu", template="chatml-tags"))
    tasks = lookup_tasks(6, seed=4)
    trajs = record_experts(engine, tasks, [lookup_tool()], RolloutSection(max_steps=3))
    stack = RewardStack(correctness=("exact",), multi_tool_bonus=0.0)
    for traj, task in zip(trajs, tasks, strict=True):
        assert traj.status == "finished" and traj.final_answer == task.answer
        assert [type(s) for s in traj.steps] == [PolicyStep, ToolStep, PolicyStep]
        assert sum(r.value for r in stack.score(traj, task)) == 1.0
        ids = tokenizer.encode(traj.steps[0].text, add_special_tokens=False)  # type: ignore[union-attr]
        assert traj.steps[0].token_ids == ids  # a tool-call turn ends at its closing tag
        assert traj.steps[2].token_ids[-1] == tokenizer.convert_tokens_to_ids("<|im_end|>")
    rows = sft_rows(trajs)
    assert [sum(m) for _, m in rows] == [sum(len(s.token_ids) for s in t.policy_steps()) for t in trajs]
    pad = tokenizer.pad_token_id
    before = float(sft_loss(model, rows, pad)[0].detach())
    history = run_sft(model, trajs, SFTConfig(steps=15, batch_size=6, lr=3e-3), pad_id=pad)
    assert history[0]["sft_tokens"] == sum(sum(m) for _, m in rows)
    assert float(sft_loss(model, rows, pad)[0].detach()) < before * 0.6


def test_sft_loss_projects_only_trained_positions_and_matches_the_full_loss() -> None:
    """The loss read from the first trained position on equals the full-sequence loss worked out directly."""
    import torch

    from reasonloop.training.sft import sft_loss
    from reasonloop.training.toy import toy_policy_pair

    tokenizer, model = toy_policy_pair(seed=2)
    pad = int(tokenizer.pad_token_id)
    g = torch.Generator().manual_seed(0)
    rows = []
    for length, first in ((14, 6), (9, 4), (11, 8)):  # prompt of `first` ids, then trained ids
        ids = torch.randint(5, len(tokenizer) - 1, (length,), generator=g).tolist()
        rows.append((ids, [0] * first + [1] * (length - first)))
    loss, metrics = sft_loss(model, rows, pad)
    # by hand: every position's logits, cross-entropy on the masked next tokens only
    total, count = 0.0, 0
    for ids, mask in rows:
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), dim=-1)
        for t in range(1, len(ids)):
            if mask[t]:
                total -= float(logp[t - 1, ids[t]])
                count += 1
    assert metrics["sft_tokens"] == count == 5 + 8 + 3
    assert float(loss) == pytest.approx(total / count, rel=1e-5)
    bf16, _ = sft_loss(model, rows, pad, bf16=True)  # autocast on the CPU: the same loss to bf16 rounding
    assert float(bf16) == pytest.approx(total / count, rel=2e-2)
    loss.backward()  # gradients reach the embeddings through the unprojected prompt positions
    assert model.get_input_embeddings().weight.grad.abs().sum() > 0
