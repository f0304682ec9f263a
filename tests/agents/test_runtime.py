"""AgentRuntime: recording, storing, resuming, concurrency, durable checkpoints, forks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from reasonloop.agents import AgentRuntime, AgentTask, build_react_agent
from reasonloop.policy.replay import ReplayPolicy
from reasonloop.tools.base import tool
from reasonloop.trajectory.store import RunStore


def _qa(rec: Any, n: int) -> list[Any]:
    return [rec.episode(f"q{i}", rec.calls(("add", {"a": i, "b": i})), rec.answer(str(2 * i)), task_id=f"t{i}")
            for i in range(n)]


def test_trajectories_are_stored_once(rec: Any, tmp_path: Path) -> None:
    agent = build_react_agent(ReplayPolicy(_qa(rec, 1)), [rec.add])
    with RunStore(tmp_path / "runs.db") as store:

        async def go() -> list[Any]:
            runtime = AgentRuntime(agent, store=store, run_id="r1")
            return [await runtime.run("q0", task_id="t0", seed=7) for _ in range(2)]

        first, second = asyncio.run(go())
        assert store.count("r1") == 1
        assert store.has("r1", "t0", 0, 7)
        stored = next(iter(store.iter_trajectories(run_id="r1")))
        assert stored == first and stored.id != second.id
        assert stored.final_answer == "0" and stored.status == "finished"
        assert stored.finished_at is not None and stored.metrics["wall_s"] >= 0


def test_run_many_resumes_and_isolates_failures(rec: Any, tmp_path: Path) -> None:
    agent = build_react_agent(ReplayPolicy(_qa(rec, 3)), [rec.add], max_errors=1)
    tasks = [AgentTask(task_id=f"t{i}", prompt=f"q{i}", seed=10) for i in range(3)]
    with RunStore(tmp_path / "runs.db") as store:

        async def go() -> tuple[list[Any], list[Any], list[Any]]:
            runtime = AgentRuntime(agent, store=store, run_id="r")
            first = await runtime.run_many(tasks[:2], samples=2)
            again = await runtime.run_many(tasks, samples=2)
            broken = await runtime.run_many([{"task_id": "tx", "prompt": "unknown"}, tasks[0]], samples=3)
            return first, again, broken

        first, again, broken = asyncio.run(go())
        assert [(t.task_id, t.sample, t.seed) for t in first] == [("t0", 0, 10), ("t0", 1, 11), ("t1", 0, 10),
                                                                   ("t1", 1, 11)]
        assert all(t.status == "finished" for t in first)
        assert [(t.task_id, t.sample) for t in again] == [("t2", 0), ("t2", 1)]  # stored keys skipped
        assert [(t.task_id, t.sample, t.status) for t in broken] == [
            ("tx", 0, "error"), ("tx", 1, "error"), ("tx", 2, "error"), ("t0", 2, "finished")]
        assert "no recording" in (broken[0].error or "")
        assert store.count("r") == 6 + 4


def test_run_many_honours_the_concurrency_limit(rec: Any) -> None:
    live = {"now": 0, "max": 0}

    @tool
    async def slow(x: int) -> int:
        """Wait a little, counting the calls in flight.

        Args:
            x: Returned unchanged.
        """
        live["now"] += 1
        live["max"] = max(live["max"], live["now"])
        await asyncio.sleep(0.02)
        live["now"] -= 1
        return x

    recs = [rec.episode(f"q{i}", rec.calls(("slow", {"x": i})), rec.answer(str(i)), task_id=f"t{i}") for i in range(6)]
    agent = build_react_agent(ReplayPolicy(recs), [slow])

    async def go() -> list[Any]:
        return await AgentRuntime(agent, concurrency=3).run_many([{"task_id": f"t{i}", "prompt": f"q{i}"} for i in range(6)])

    trajs = asyncio.run(go())
    assert [t.final_answer for t in trajs] == [str(i) for i in range(6)]
    assert live["max"] == 3


def test_tool_sessions_are_closed_after_each_episode(rec: Any, push: Any, list_sessions: Any) -> None:
    recorded = rec.episode("p", rec.calls(("push", {"x": 1})), rec.calls(("push", {"x": 2})), rec.answer("ok"))
    agent = build_react_agent(ReplayPolicy([recorded]), [push])

    async def go() -> Any:
        return await AgentRuntime(agent, checkpointer=False).run("p", task_id="t0")

    traj = asyncio.run(go())
    assert [s.result.output for s in traj.tool_steps()] == ["[1]", "[1, 2]"]
    assert list_sessions.opened == 1 and list_sessions.closed == [[1, 2]]


def test_durable_sqlite_checkpoints(rec: Any, tmp_path: Path) -> None:
    agent = build_react_agent(ReplayPolicy(_qa(rec, 1)), [rec.add])
    path = tmp_path / "ckpt" / "graph.db"

    async def first() -> Any:
        async with AgentRuntime(agent, checkpointer=path) as runtime:
            ep = await runtime.start("q0", task_id="t0")
            await runtime.advance(ep, until="tools")
            branch = runtime.fork(ep)
            return await runtime.finish(ep), await runtime.finish(branch)

    async def later(thread_id: str) -> Any:
        async with AgentRuntime(agent, checkpointer=path) as runtime:
            return await runtime.state(thread_id)

    traj, branch = asyncio.run(first())
    assert traj.status == branch.status == "finished" and branch.parent_id == traj.id
    saved = asyncio.run(later(traj.metadata["thread_id"]))
    assert saved is not None and saved["status"] == "finished"
    assert saved["steps"] == [s.model_dump(mode="json") for s in traj.steps]
    assert asyncio.run(later("no-such-thread")) is None


def test_fork_continues_independently_with_forked_tool_state(rec: Any, push: Any, list_sessions: Any) -> None:
    recorded = rec.episode("p", rec.calls(("push", {"x": 1})), rec.calls(("push", {"x": 2})), rec.answer("ok"))
    agent = build_react_agent(ReplayPolicy([recorded]), [push])

    async def go() -> tuple[Any, Any, Any, list[Any]]:
        runtime = AgentRuntime(agent)
        plain = await runtime.run("p", task_id="t0", seed=5)
        ep = await runtime.start("p", task_id="t0", seed=5)
        shared = await runtime.advance(ep, until="tools")
        branch = runtime.fork(ep)
        parent = await runtime.finish(ep)  # runs push(2) in the parent's list first
        child = await runtime.finish(branch)
        return plain, parent, child, shared

    plain, parent, child, shared = asyncio.run(go())
    assert [s.kind for s in shared] == ["policy", "tool"]
    assert [rec.comparable(s) for s in parent.steps] == [rec.comparable(s) for s in plain.steps]
    assert parent.parent_id is None and parent.fork_step is None
    assert child.parent_id == parent.id and child.fork_step == 2
    assert [rec.comparable(s) for s in child.steps[:2]] == [rec.comparable(s) for s in parent.steps[:2]]
    # A shared session would show [1, 2, 2] in the branch.
    assert [s.result.output for s in child.tool_steps()] == ["[1]", "[1, 2]"]
    assert child.seed not in (None, parent.seed) and child.key != parent.key
    assert list_sessions.forked == 1
    assert sorted(list_sessions.closed) == [[1, 2], [1, 2], [1, 2]]


def test_fork_before_the_first_policy_call_and_mid_turn(rec: Any, push: Any, list_sessions: Any) -> None:
    recorded = rec.episode("p", rec.calls(("push", {"x": 1})), rec.answer("ok"))
    agent = build_react_agent(ReplayPolicy([recorded]), [push])

    async def go() -> list[Any]:
        runtime = AgentRuntime(agent)
        ep = await runtime.start("p", task_id="t0")
        early = runtime.fork(ep)  # nothing has run yet
        await runtime.advance(ep, until="policy")  # the policy asked for push(1); tools not run yet
        mid = runtime.fork(ep)
        mid_of_mid = runtime.fork(mid)  # a branch of a branch that has not run yet
        return [await runtime.finish(e) for e in (ep, early, mid, mid_of_mid)]

    parent, early, mid, mid_of_mid = asyncio.run(go())
    for t in (parent, early, mid, mid_of_mid):
        assert t.status == "finished" and [s.kind for s in t.steps] == ["policy", "tool", "policy"]
        assert t.tool_steps()[0].result.output == "[1]"
    assert (early.fork_step, mid.fork_step, mid_of_mid.fork_step) == (0, 1, 1)
    assert (early.parent_id, mid.parent_id, mid_of_mid.parent_id) == (parent.id, parent.id, mid.id)
    assert len({t.key for t in (parent, early, mid, mid_of_mid)}) == 4
