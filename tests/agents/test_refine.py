"""The refine loop on a real local model (tiny, random-init): verdicts, forced ids and replay are exact."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from reasonloop.agents import AgentRuntime
from reasonloop.agents.refine import Attempt, CheckRun, CheckVerdict, RefineLoop, build_refine_agent
from reasonloop.errors import ConfigError
from reasonloop.policy.base import SamplingParams
from reasonloop.policy.replay import ReplayPolicy
from reasonloop.tools.base import Tool, ToolsetSession
from reasonloop.trajectory.schema import NoteStep, Trajectory

pytest.importorskip("torch")
pytest.importorskip("transformers")

SAMPLING = SamplingParams(temperature=1.0, max_tokens=6)


class EveryTurnChecker:
    """Takes any non-empty reply as the attempt and rejects it, quoting its length."""

    name = "length-check"
    tools: Sequence[Tool] = ()
    offered: Sequence[Tool] = ()

    def find(self, step: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]) -> Attempt | None:
        return Attempt(artefact=step["text"]) if step["text"] else None

    async def check(self, attempt: Attempt, session: ToolsetSession, messages: Sequence[Mapping[str, Any]]) -> CheckRun:
        return CheckRun(verdict=CheckVerdict(ok=False, feedback=f"{len(attempt.artefact)} characters is too short"))


@pytest.fixture(scope="module")
def hf_policy() -> Any:
    from reasonloop.policy.hf import HFPolicy, HFPolicyConfig
    from reasonloop.policy.tiny_model import build_tiny_model, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    return HFPolicy(build_tiny_model(tokenizer, max_positions=2048, seed=5), tokenizer, HFPolicyConfig(device="cpu"))


def _run(agent: Any, seed: int) -> tuple[Trajectory, list[int]]:
    async def go() -> tuple[Trajectory, list[int]]:
        async with AgentRuntime(agent) as runtime:
            ep = await runtime.start("Write something long.", task_id="t0", seed=seed)
            await runtime.advance(ep, until=None)
            context = list(ep.state["token_ids"] or [])
            return await runtime.finish(ep), context

    return asyncio.run(go())


def test_verdicts_on_a_real_model_keep_the_token_stream_exact_and_replayable(hf_policy: Any) -> None:
    loop = RefineLoop(checker=EveryTurnChecker(), max_repairs=2)
    # length-cut turns are attempts too here: the checker takes any text, so each turn is judged
    agent = build_refine_agent(hf_policy, loop, sampling=SAMPLING, max_steps=6)
    traj, context = _run(agent, seed=4)
    notes = [s for s in traj.steps if isinstance(s, NoteStep) and "verdict" in s.data]
    attempts = [n.data["attempt"] for n in notes]
    assert traj.status == "truncated" and attempts == list(range(1, len(attempts) + 1)) and attempts[-1] == 3
    assert traj.token_ids() == context and sum(traj.loss_mask()) == sum(len(s.token_ids) for s in traj.policy_steps())
    shown = [n for n in notes if n.role == "user"]
    assert len(shown) == 2 and all(n.token_ids for n in shown) and not notes[-1].token_ids
    assert "rejected attempt 1" in hf_policy.tokenizer.decode(shown[0].token_ids)
    replay = ReplayPolicy([Trajectory.from_json(traj.to_json())])  # through JSON, as stored
    again, _ = _run(build_refine_agent(replay, loop, sampling=SAMPLING, max_steps=6), seed=4)
    assert again.token_ids() == traj.token_ids() and again.loss_mask() == traj.loss_mask()
    assert [s.kind for s in again.steps] == [s.kind for s in traj.steps] and again.status == "truncated"


def test_loop_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="max_repairs must be >= 0"):
        RefineLoop(checker=EveryTurnChecker(), max_repairs=-1)
