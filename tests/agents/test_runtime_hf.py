"""The agent on a real local model (tiny, random-init): token streams are exact and replayable."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reasonloop.agents import AgentRuntime, build_react_agent
from reasonloop.policy.base import SamplingParams
from reasonloop.policy.replay import ReplayPolicy
from reasonloop.trajectory.schema import NoteStep, PolicyStep

pytest.importorskip("torch")
pytest.importorskip("transformers")

SAMPLING = SamplingParams(temperature=1.0, max_tokens=8)


@pytest.fixture(scope="module")
def hf_policy() -> Any:
    from reasonloop.policy.hf import HFPolicy, HFPolicyConfig
    from reasonloop.policy.tiny_model import build_tiny_model, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    model = build_tiny_model(tokenizer, max_positions=2048, seed=3)
    return HFPolicy(model, tokenizer, HFPolicyConfig(device="cpu"))


def test_recorded_stream_is_the_context_the_model_saw(hf_policy: Any, rec: Any) -> None:
    agent = build_react_agent(hf_policy, [rec.add], sampling=SAMPLING, max_steps=3)

    async def go() -> tuple[Any, list[int]]:
        runtime = AgentRuntime(agent)
        ep = await runtime.start("What is 2 + 3?", task_id="t0", seed=1)
        await runtime.advance(ep, until=None)
        context_ids = list(ep.state["token_ids"] or [])
        return await runtime.finish(ep), context_ids

    traj, context_ids = asyncio.run(go())
    assert traj.prompt_token_ids == hf_policy.start(traj.messages, agent.specs)
    assert traj.token_ids() == context_ids
    policy_steps = traj.policy_steps()
    assert sum(traj.loss_mask()) == sum(len(s.token_ids) for s in policy_steps) > 0
    for step in policy_steps:
        assert step.logprobs is not None and len(step.logprobs) == len(step.token_ids)
        assert step.entropy_kind == "exact" and step.sampling["max_tokens"] == 8
    notes = [s for s in traj.steps if isinstance(s, NoteStep) and s.role == "user"]
    assert notes, "a random model cut at 8 tokens gets 'cut off' feedback"
    assert all(n.token_ids for n in notes)
    assert "cut off" in hf_policy.tokenizer.decode(notes[0].token_ids)


def test_replay_through_the_agent_reproduces_steps_and_tokens(hf_policy: Any, rec: Any) -> None:
    agent = build_react_agent(hf_policy, [rec.add], sampling=SAMPLING, max_steps=3)

    async def record() -> Any:
        return await AgentRuntime(agent).run("Add 2 and 3.", task_id="t0", seed=2)

    original = asyncio.run(record())
    assert len(original.policy_steps()) >= 2
    replay = ReplayPolicy.from_jsonl(_jsonl(original))
    assert replay.tool_format == hf_policy.tool_format == "json"
    again_agent = build_react_agent(replay, [rec.add], sampling=SAMPLING, max_steps=3)

    async def rerun() -> Any:
        return await AgentRuntime(again_agent).run("Add 2 and 3.", task_id="t0", seed=2)

    again = asyncio.run(rerun())
    assert again.status == original.status and again.final_answer == original.final_answer
    assert [rec.comparable(s) for s in again.steps] == [rec.comparable(s) for s in original.steps]
    assert again.prompt_token_ids == original.prompt_token_ids
    assert again.token_ids() == original.token_ids() and again.loss_mask() == original.loss_mask()


def test_a_failing_episode_does_not_stop_the_others(hf_policy: Any, rec: Any) -> None:
    agent = build_react_agent(hf_policy, [rec.add], sampling=SAMPLING, max_steps=1)
    tasks = [{"task_id": "long", "prompt": "word " * 2500}, {"task_id": "short", "prompt": "Hi"}]

    async def go() -> list[Any]:
        return await AgentRuntime(agent, concurrency=2).run_many(tasks)

    long, short = asyncio.run(go())
    assert long.status == "error" and "does not fit" in (long.error or "")
    assert short.status in ("finished", "truncated") and isinstance(short.steps[0], PolicyStep)


def _jsonl(traj: Any) -> Any:
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "rec.jsonl"
    path.write_text(traj.to_json() + "\n", encoding="utf-8")
    return path
