"""What the benchmark runner itself costs: 500 episodes of a replay policy at concurrency 32.

    python benchmarks/bench_runner_overhead.py [--episodes 500] [--concurrency 32] [--profile]

The policy is the ``arith`` suite's scripted expert served by a replay policy (no model),
and the tool is the in-process calculator, so nearly all of the time measured is the
framework: the LangGraph graph, trajectory recording, the verifier, the SQLite store.

Prints episodes/s of ``run_bench`` end to end, then a breakdown from an instrumented
run of the same episodes: time inside ``policy.generate``, inside tools, inside the
scorer, inside ``RunStore.put`` (a worker thread, overlapping the rest), and what is
left (graph, state, recording, scheduling).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from reasonloop.agents import AgentRuntime, build_react_agent
from reasonloop.bench import SUITES, run_bench
from reasonloop.bench.experts import expert_policy
from reasonloop.trajectory.store import RunStore


class TimedPolicy:
    """Forwards to a policy and adds up the time spent in ``generate``."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.seconds, self.calls = inner, 0.0, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def generate(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await self.inner.generate(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1


class TimedStore(RunStore):
    """A run store that adds up the time spent in ``put``."""

    put_seconds = 0.0

    def put(self, traj: Any) -> bool:
        start = time.perf_counter()
        try:
            return super().put(traj)
        finally:
            self.put_seconds += time.perf_counter() - start


def end_to_end(episodes: int, concurrency: int, out: Path) -> float:
    start = time.perf_counter()
    report = run_bench("arith", n=episodes, model="expert", concurrency=concurrency, out_dir=out, live=False, plots=False)
    wall = time.perf_counter() - start
    assert report.episodes == episodes and report.pass_at_1 == 1.0, report.status_counts
    return wall


async def instrumented(episodes: int, concurrency: int, out: Path) -> dict[str, float]:
    suite = SUITES.get("arith")
    tasks = suite.generate(episodes, seed=1)
    policy = TimedPolicy(expert_policy(tasks, system_prompt=suite.system_prompt))
    agent = build_react_agent(policy, suite.toolset(tasks, cache_dir=out), system_prompt=suite.system_prompt, max_steps=8)  # type: ignore[arg-type]
    by_id = {t.id: t for t in tasks}
    scorer_seconds = [0.0]

    def scorer(traj: Any) -> Any:
        start = time.perf_counter()
        verdict = by_id[traj.task_id].verify(traj.final_answer, traj)
        scorer_seconds[0] += time.perf_counter() - start
        return [verdict.as_reward("verifier")]

    with TimedStore(out / "runs.sqlite") as store:
        start = time.perf_counter()
        async with AgentRuntime(agent, store=store, run_id="overhead", scorer=scorer, concurrency=concurrency) as rt:
            trajs = await rt.run_many([{"task_id": t.id, "prompt": t.prompt} for t in tasks])
        wall = time.perf_counter() - start
        put = store.put_seconds
    tools = sum(s.duration_s for t in trajs for s in t.tool_steps())
    assert all(t.rewards[0].value == 1.0 for t in trajs)
    return {"wall": wall, "policy": policy.seconds, "policy_calls": policy.calls, "tools": tools,
            "scorer": scorer_seconds[0], "store_put": put}  # fmt: skip


def breakdown(parts: dict[str, float], n: int) -> None:
    w = parts["wall"]
    rest = w - parts["policy"] - parts["tools"] - parts["scorer"] - parts["store_put"]
    rows = [
        ("policy.generate (replay)", parts["policy"], f"{int(parts['policy_calls'])} calls"),
        ("tools (calculator, via a worker thread)", parts["tools"], ""),
        ("scorer (verifier)", parts["scorer"], ""),
        ("RunStore.put (FULL sync: fsync per episode)", parts["store_put"], ""),
        ("framework (graph, recording, scheduling)", rest, "= wall - the four above"),
    ]
    print(f"  {'part':46} {'seconds':>8} {'share':>7} {'ms/episode':>11}")
    for name, secs, note in rows:
        print(f"  {name:46} {secs:8.3f} {secs / w:7.1%} {1000 * secs / n:11.3f}  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--profile", action="store_true", help="also print the top functions of the instrumented run")
    args = parser.parse_args()
    n, c = args.episodes, args.concurrency
    with tempfile.TemporaryDirectory() as tmp:
        wall = end_to_end(n, c, Path(tmp) / "e2e")
        print(f"run_bench end to end: {n} episodes, concurrency {c}: {wall:.2f} s = {n / wall:.1f} episodes/s "
              f"({1000 * wall / n:.2f} ms/episode; includes task generation, report, summary)")
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        wide = asyncio.run(instrumented(n, c, Path(tmp) / "wide"))
        if profiler:
            profiler.disable()
        # At concurrency 1 the parts do not overlap, so they add up to the wall time.
        serial = asyncio.run(instrumented(n, 1, Path(tmp) / "serial"))
    print(f"AgentRuntime.run_many, concurrency {c}: {wide['wall']:.2f} s = {n / wide['wall']:.1f} episodes/s; "
          f"policy.generate is {wide['policy'] / wide['wall']:.1%} of the wall time")
    print(f"AgentRuntime.run_many, concurrency 1: {serial['wall']:.2f} s = {n / serial['wall']:.1f} episodes/s; where it goes:")
    breakdown(serial, n)
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
