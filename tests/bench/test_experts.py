"""Scripted experts replayed through the real agent and tools reproduce the answers."""

import asyncio

from reasonloop.agents import AgentRuntime, build_react_agent
from reasonloop.bench import arith_tasks
from reasonloop.bench.experts import expert_recording
from reasonloop.policy.replay import ReplayPolicy
from reasonloop.tools.registry import load_toolset

SYSTEM = "Use tools."


def test_arith_expert_replays_to_correct_verified_answers(tmp_path):
    from reasonloop.trajectory.store import RunStore

    tasks = arith_tasks(12, seed=5, difficulty=3)
    toolset = load_toolset("calculator")
    msgs = lambda t: [{"role": "system", "content": SYSTEM}, {"role": "user", "content": t.prompt}]  # noqa: E731
    policy = ReplayPolicy([expert_recording(t, msgs(t)) for t in tasks])
    agent = build_react_agent(policy, toolset, system_prompt=SYSTEM, max_steps=4)
    by_id = {t.id: t for t in tasks}

    def score(traj):
        return [by_id[traj.task_id].verify(traj.final_answer, traj).as_reward("verifier")]

    async def go():
        with RunStore(tmp_path / "r.sqlite") as store:
            async with AgentRuntime(agent, store=store, run_id="x", scorer=score) as rt:
                trajs = await rt.run_many([{"task_id": t.id, "prompt": t.prompt} for t in tasks])
            return trajs, store.count("x"), list(store.iter_trajectories(run_id="x"))

    trajs, stored, back = asyncio.run(go())
    assert stored == 12
    for traj in trajs:
        task = by_id[traj.task_id]
        assert traj.status == "finished"
        assert traj.final_answer == task.answer
        assert traj.rewards[0].value == 1.0 and traj.rewards[0].source == "verifier"
        (tool_step,) = traj.tool_steps()
        assert tool_step.result.output == task.answer
    assert {t.id: t.rewards for t in back} == {t.id: t.rewards for t in trajs}


def test_broken_scorer_is_recorded_not_raised():
    task = arith_tasks(1, seed=1)[0]
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": task.prompt}]
    agent = build_react_agent(ReplayPolicy([expert_recording(task, msgs)]), load_toolset("calculator"), system_prompt=SYSTEM)

    def bad(traj):
        raise RuntimeError("scorer bug")

    traj = asyncio.run(AgentRuntime(agent, scorer=bad).run(task.prompt, task_id=task.id))
    assert traj.status == "finished" and traj.rewards == []
    assert traj.metadata["scorer_error"] == "RuntimeError: scorer bug"
