"""Rollout groups through the real agent, tools and a warm-started tiny model."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reasonloop.training.branching import BranchConfig
from reasonloop.training.rollout import RolloutConfig, premonitor_split, rollout_group, tool_entropy_profile
from reasonloop.trajectory.schema import PolicyStep, ToolCall, ToolResult, ToolStatus, ToolStep, Trajectory

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def agent(warm_toy: Any) -> Any:
    from reasonloop.policy.hf import HFPolicyConfig
    from reasonloop.training.config import RolloutSection
    from reasonloop.training.engine import HFEngine
    from reasonloop.training.setup import build_agent
    from reasonloop.training.toy import lookup_tool

    engine = HFEngine(warm_toy.model(), warm_toy.tokenizer, HFPolicyConfig(device="cpu", template="chatml-tags"))
    return build_agent(engine, [lookup_tool()], RolloutSection(max_tokens=12, max_steps=3, temperature=1.0))


def _group(agent: Any, config: RolloutConfig, seed: int = 11) -> Any:
    from reasonloop.agents import AgentRuntime

    async def go() -> Any:
        async with AgentRuntime(agent) as runtime:
            return await rollout_group(runtime, "Code of 42?", task_id="t42", seed=seed, config=config)

    return asyncio.run(go())


def test_grpo_group_is_m_independent_samples(agent: Any) -> None:
    group = _group(agent, RolloutConfig(mode="grpo", group_size=5))
    trajs = group.trajectories
    assert len(trajs) == 5 and len({t.seed for t in trajs}) == 5
    assert list(group.shape.parents) == [None] * 5 and list(group.shape.n_steps) == [len(t.steps) for t in trajs]
    assert all(t.metadata["rollout"]["role"] == "global" and t.metadata["rollout"]["h_init"] > 0 for t in trajs)
    assert group.metrics["branches"] == 0


def test_arpo_branches_right_after_tool_results_within_the_budget(agent: Any) -> None:
    always = BranchConfig(alpha=1.0, beta=0.0, tau=0.5, window=4)  # P = 1 > tau at every decision
    group = _group(agent, RolloutConfig(mode="arpo", group_size=6, global_samples=2, branch=always))
    trajs = group.trajectories
    assert len(trajs) == 6
    branches = [t for t in trajs if t.parent_id is not None]
    assert branches and group.metrics["branches"] == len(branches)
    by_id = {t.id: t for t in trajs}
    for child in branches:
        parent = by_id[child.parent_id]  # type: ignore[index]
        fork = child.fork_step
        assert fork is not None and isinstance(child.steps[fork - 1], ToolStep)  # the fork point is right after a tool result
        assert [s.model_dump() for s in child.steps[:fork]] == [s.model_dump() for s in parent.steps[:fork]]
        assert isinstance(child.steps[fork], PolicyStep)  # and the branch re-samples from there
        assert child.token_ids()[: len(parent.prompt_token_ids)] == parent.prompt_token_ids
        born = child.metadata["rollout"]["branched_from"]
        assert born["parent_id"] == parent.id and born["fork_step"] == fork
        assert born["decision"]["branch"] is True and born["decision"]["probability"] == 1.0
        assert born["decision"]["h_init"] == parent.metadata["rollout"]["h_init"]
    decisions = [d for t in trajs for d in t.metadata["rollout"]["decisions"]]
    assert decisions and all({"h_step", "delta", "fork_step", "tool_round", "branches"} <= set(d) for d in decisions)
    index = {t.id: i for i, t in enumerate(trajs)}
    assert list(group.shape.parents) == [index.get(t.parent_id) if t.parent_id else None for t in trajs]  # type: ignore[arg-type]


def test_arpo_without_branches_tops_up_with_fresh_global_samples(agent: Any) -> None:
    never = BranchConfig(alpha=0.0, beta=0.0, window=4)
    group = _group(agent, RolloutConfig(mode="arpo", group_size=5, global_samples=2, branch=never))
    roles = [t.metadata["rollout"]["role"] for t in group.trajectories]
    assert roles[:2] == ["global", "global"] and set(roles[2:]) == {"top_up"} and len(roles) == 5
    decisions = [d for t in group.trajectories for d in t.metadata["rollout"]["decisions"]]
    assert decisions and not any(d["branch"] for d in decisions)


def test_sampled_mode_is_reproducible_from_the_seed(agent: Any) -> None:
    cfg = RolloutConfig(mode="arpo", group_size=6, global_samples=3, branch=BranchConfig(mode="sampled", window=4))
    a, b = _group(agent, cfg, seed=3), _group(agent, cfg, seed=3)
    da = [d for t in a.trajectories for d in t.metadata["rollout"]["decisions"]]
    db = [d for t in b.trajectories for d in t.metadata["rollout"]["decisions"]]
    # Prefix-cache hits may differ between the runs, so entropies agree to float rounding.
    assert [(d["branch"], d["u"], d["fork_step"]) for d in da] == [(d["branch"], d["u"], d["fork_step"]) for d in db]
    assert [d["h_step"] for d in da] == pytest.approx([d["h_step"] for d in db], abs=1e-5)
    assert all(d["u"] is not None for d in da)
    assert [t.token_ids() for t in a.trajectories] == [t.token_ids() for t in b.trajectories]


def test_premonitor_split_and_entropy_profile_by_hand() -> None:
    # share = sigmoid(1 * (2 - 1)) = 0.731; N = 8 - round(5.85) = 2
    assert premonitor_split(1.0, 2.0, 8) == 2
    assert premonitor_split(2.0, 1.0, 8) == 6  # share 0.269 -> 8 - 2
    assert premonitor_split(1.0, None, 8) == 4
    call = ToolCall(name="lookup", arguments={"key": "1"})
    traj = Trajectory(steps=[
        PolicyStep(token_ids=[1, 2], entropies=[1.0, 3.0]),
        ToolStep(call=call, result=ToolResult(status=ToolStatus.OK, output="5")),
        PolicyStep(token_ids=[3], entropies=[4.0]),
        PolicyStep(token_ids=[4], entropies=[9.0]),  # not after a tool result
    ])
    assert tool_entropy_profile(traj, window=2) == (2.0, 4.0)
