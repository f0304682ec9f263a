"""``reasonloop demo``: an agent with tools, every step recorded, then the stored trajectories.

The policy is a replay of the arith suite's scripted expert: the tool calls run for
real (the calculator), the verifier scores every answer, each episode is stored in a
run store and exported. Point the same commands at a real model with
``--model openai/...`` or ``--model hosted_vllm/...``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from reasonloop.console import print_step, print_trajectory, trajectory_table

__all__ = ["SYSTEM_PROMPT", "run_demo"]

SYSTEM_PROMPT = "You solve problems with tools. Call a tool when it helps; end with <answer>...</answer>."
HELD_OUT_SEED = 1000


async def _episodes(out: Path, n: int, console: Console) -> list[Any]:
    from reasonloop.agents import AgentRuntime, build_react_agent
    from reasonloop.bench import arith_tasks
    from reasonloop.bench.experts import expert_recording
    from reasonloop.policy.replay import ReplayPolicy
    from reasonloop.tools.registry import load_toolset
    from reasonloop.trajectory.store import RunStore

    tasks = {t.id: t for t in arith_tasks(n, seed=HELD_OUT_SEED, difficulty=2)}
    toolset = load_toolset("calculator")
    messages = lambda t: [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": t.prompt}]  # noqa: E731
    policy = ReplayPolicy([expert_recording(t, messages(t)) for t in tasks.values()], name="replay:scripted-expert")
    agent = build_react_agent(policy, toolset, system_prompt=SYSTEM_PROMPT, max_steps=4)

    def score(traj: Any) -> list[Any]:
        return [tasks[traj.task_id].verify(traj.final_answer, traj).as_reward("verifier:numeric")]

    def show(event: dict[str, Any]) -> None:
        console.print(f"[dim]{event['episode_id'][:8]}[/dim]", end=" ")
        print_step(console, event["step"], event["index"])

    with RunStore(out / "runs.sqlite") as store:
        async with AgentRuntime(agent, store=store, run_id="demo", scorer=score, concurrency=1) as runtime:
            trajs = await runtime.run_many(
                [{"task_id": t.id, "prompt": t.prompt} for t in tasks.values()], on_step=show, skip_finished=False
            )
    return trajs


async def _local_model_episode(out: Path, console: Console) -> Any:
    """One episode with a local transformers model: every token id, log-prob and entropy.

    The model is a tiny random-init one built here (nothing is downloaded), so its
    text is noise; the point is the bookkeeping, which is the same for any ``hf:PATH``.
    """
    from transformers.utils import logging as hf_logging

    from reasonloop.agents import AgentRuntime, build_react_agent
    from reasonloop.bench import arith_tasks
    from reasonloop.policy.base import SamplingParams
    from reasonloop.policy.hf import HFPolicy
    from reasonloop.policy.tiny_model import build_tiny_model, build_tiny_tokenizer, save_tiny
    from reasonloop.tools.registry import load_toolset
    from reasonloop.trajectory.store import RunStore

    hf_logging.disable_progress_bar()
    task = arith_tasks(1, seed=HELD_OUT_SEED + 1)[0]
    tokenizer = build_tiny_tokenizer([task.prompt, SYSTEM_PROMPT] * 4)
    path = save_tiny(build_tiny_model(tokenizer, seed=0), tokenizer, out / "tiny-random-model")
    policy = HFPolicy.from_pretrained(path)
    sampling = SamplingParams(temperature=1.0, max_tokens=24, seed=0)
    agent = build_react_agent(policy, load_toolset("calculator"), system_prompt=SYSTEM_PROMPT, sampling=sampling,
                              max_steps=2)
    with RunStore(out / "runs.sqlite") as store:
        async with AgentRuntime(agent, store=store, run_id="demo-local-model") as runtime:
            return await runtime.run(task.prompt, task_id=task.id, seed=0)


def run_demo(*, out: Path, quick: bool, console: Console) -> int:
    """Run the demo; returns the process exit code."""
    from reasonloop.trajectory.export import export_jsonl, export_parquet
    from reasonloop.trajectory.store import RunStore

    out.mkdir(parents=True, exist_ok=True)
    (out / "runs.sqlite").unlink(missing_ok=True)
    n = 3 if quick else 8
    console.rule("reasonloop demo")
    console.print(
        f"Agent: ReAct graph (LangGraph) with the calculator tool, on {n} held-out arith tasks.\n"
        "Policy: replay of the suite's scripted expert; tools, verifier and recording are real.\n"
    )
    start = time.perf_counter()
    trajs = asyncio.run(_episodes(out, n, console))
    elapsed = time.perf_counter() - start
    console.rule("one stored trajectory")
    with RunStore(out / "runs.sqlite") as store:
        print_trajectory(console, store.get(trajs[0].id))
        n_jsonl = export_jsonl(store, out / "trajectories.jsonl", run_id="demo")
        export_parquet(store, out / "trajectories.parquet", run_id="demo")
    if not quick:
        console.rule(f"a local model: hf:{out / 'tiny-random-model'}")
        local = asyncio.run(_local_model_episode(out, console))
        print_trajectory(console, local)
        first = local.policy_steps()[0]
        console.print(
            f"first policy step: ids {first.token_ids[:8]}..., log-probs "
            f"{[round(x, 2) for x in (first.logprobs or [])[:4]]}..., entropies "
            f"{[round(x, 2) for x in (first.entropies or [])[:4]]}... ({first.entropy_kind})"
        )
    correct = sum(1 for t in trajs if t.reward > 0)
    rows = [{
        "suite": "arith", "episodes": len(trajs), "accuracy": correct / max(1, len(trajs)),
        "tool calls": sum(len(t.tool_steps()) for t in trajs), "seconds": elapsed,
    }]
    console.print(trajectory_table(rows, "results"))
    console.print(
        f"\nTrajectories: {out / 'runs.sqlite'} (run 'demo', {n_jsonl} episodes), "
        f"{out / 'trajectories.jsonl'}, {out / 'trajectories.parquet'}\n"
        f"Inspect: reasonloop runs list --store {out / 'runs.sqlite'}\n"
        "Real model: reasonloop run \"What is 1234 * 5678 - 91?\" --model openai/gpt-4o-mini --tools calculator\n"
        "           (or --model hosted_vllm/MODEL --api-base http://HOST:8000/v1)"
    )
    return 0 if correct == len(trajs) else 1
