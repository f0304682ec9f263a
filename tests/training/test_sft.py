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
