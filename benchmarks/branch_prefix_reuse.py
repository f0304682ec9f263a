"""Tokens actually computed for ARPO groups: prefix KV reuse versus re-encoding every call.

Run: ``.venv/bin/python benchmarks/branch_prefix_reuse.py [--groups N] [--group-size M]``.
A tiny model warm-started on the toy lookup task rolls out the same ARPO groups (same
seeds) twice: through :class:`HFEngine` with prefix reuse, and with reuse off (every
generation re-encodes its whole context, what a plain ``generate`` call does). Prints
the tokens each run pushed through the model and the ratio, for the paper's branching
rule and for a rule that branches at every tool result (the most sharing).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from reasonloop.agents import AgentRuntime
from reasonloop.training.branching import BranchConfig
from reasonloop.training.config import ModelSection, RolloutSection
from reasonloop.training.rollout import RolloutConfig, rollout_group
from reasonloop.training.setup import build_agent, build_engine, warm_toy
from reasonloop.training.toy import lookup_tasks, lookup_tool


def _run(tokenizer: Any, model: Any, reuse: bool, cfg: RolloutConfig, groups: int) -> tuple[dict[str, float], float, list[Any]]:
    engine = build_engine(model, tokenizer, ModelSection(device="cpu"), prefix_reuse=reuse)
    agent = build_agent(engine, [lookup_tool()], RolloutSection(max_tokens=12, max_steps=3))
    tasks = lookup_tasks(groups, seed=9)

    async def go() -> list[Any]:
        async with AgentRuntime(agent) as runtime:
            return [await rollout_group(runtime, t.prompt, task_id=t.id, seed=100 + i, config=cfg)
                    for i, t in enumerate(tasks)]

    start = time.perf_counter()
    out = asyncio.run(go())
    return engine.stats.as_dict(), time.perf_counter() - start, out


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--group-size", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    tokenizer, model = warm_toy(sft_steps=60)
    rules = {"paper rule": BranchConfig(window=4), "branch at every tool result": BranchConfig(alpha=1.0, beta=0.0, window=4)}
    print(f"{'rule':<28} {'engine':<10} {'calls':>6} {'prompt tok':>10} {'computed':>9} {'reused':>8} {'branches':>8} {'wall s':>7}")
    for name, rule in rules.items():
        cfg = RolloutConfig(mode="arpo", group_size=args.group_size, global_samples=args.group_size // 2, branch=rule)
        rows = {}
        for reuse in (True, False):
            stats, wall, groups = _run(tokenizer, model, reuse, cfg, args.groups)
            branches = sum(g.metrics["branches"] for g in groups)
            rows[reuse] = stats
            label = "reuse" if reuse else "re-encode"
            print(f"{name:<28} {label:<10} {stats['engine_calls']:>6.0f} {stats['engine_prompt_tokens']:>10.0f} "
                  f"{stats['engine_computed_tokens']:>9.0f} {stats['engine_reused_tokens']:>8.0f} {branches:>8.0f} {wall:>7.2f}")
        ratio = rows[False]["engine_computed_tokens"] / max(1.0, rows[True]["engine_computed_tokens"])
        print(f"{name:<28} tokens computed, re-encode / reuse = {ratio:.2f}x")


if __name__ == "__main__":
    main()
