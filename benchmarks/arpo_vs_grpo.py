"""ARPO versus GRPO on a generated multi-step tool task, same seeds and the same budget.

Run: ``.venv/bin/python benchmarks/arpo_vs_grpo.py [--steps N] [--out DIR]``.
The task is ``chain`` (the code of the code of a key: two lookups, then the answer).
A tiny model is warm-started by SFT on scripted experts (half of which forget
``</answer>``), then trained from the same weights in ``grpo`` mode and in ``arpo``
mode (paper rule, and the released code's sampled rule), M trajectories per prompt,
same prompts and seeds. Prints reward, accuracy and tool calls per trajectory over
training (windows of steps), a held-out evaluation, and writes ``arpo_vs_grpo.png``.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path
from typing import Any

from reasonloop.training.config import load_config
from reasonloop.training.evaluate import evaluate_agent
from reasonloop.training.plots import plot_runs
from reasonloop.training.setup import warm_toy
from reasonloop.training.toy import chain_tasks
from reasonloop.training.trainer import Trainer

MODES = {"grpo": ("grpo", "paper"), "arpo-paper": ("arpo", "paper"), "arpo-sampled": ("arpo", "sampled")}


def _config(out: Path, mode: str, branch_mode: str, steps: int, group: int) -> Any:
    return load_config({
        "seed": 0, "out_dir": str(out), "checkpoint_every": 0, "deterministic": True,
        "task": {"suite": "chain", "n": 64, "seed": 0},
        "rollout": {"mode": mode, "branch_mode": branch_mode, "group_size": group, "global_samples": group // 2,
                    "max_tokens": 12, "max_steps": 4, "max_tool_calls": 3, "window": 4},
        "optim": {"steps": steps, "prompts_per_step": 2, "lr": 5e-4, "micro_batch_size": 16},
        "algo": {"ppo_epochs": 2}, "reward": {"correctness": ["exact"], "multi_tool_bonus": 0.0},
        "logging": {"plots": False},
    })


def _windows(history: list[dict[str, float]], width: int) -> list[tuple[int, dict[str, float]]]:
    out = []
    for start in range(0, len(history), width):
        chunk = history[start : start + width]
        keys = ("reward_mean", "accuracy", "tool_calls_per_traj", "branches_per_prompt", "sampled_tokens")
        out.append((start + len(chunk), {k: sum(m[k] for m in chunk) / len(chunk) for k in keys}))
    return out


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--sft-steps", type=int, default=80)
    parser.add_argument("--out", type=Path, default=Path("runs/arpo_vs_grpo"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    tokenizer, warm = warm_toy("chain", sft_steps=args.sft_steps)
    held_out = chain_tasks(24, seed=7)
    runs: dict[str, list[dict[str, Any]]] = {}
    evals: dict[str, tuple[dict[str, float], dict[str, float], float]] = {}
    for name, (mode, branch_mode) in MODES.items():
        cfg = _config(args.out / name, mode, branch_mode, args.steps, args.group_size)
        trainer = Trainer(cfg, model=copy.deepcopy(warm), tokenizer=tokenizer)
        before, _ = evaluate_agent(trainer.agent, held_out, trainer.reward, samples=2)
        start = time.perf_counter()
        history = trainer.train()
        wall = time.perf_counter() - start
        after, _ = evaluate_agent(trainer.agent, held_out, trainer.reward, samples=2)
        runs[name] = [{"step": i + 1, **m} for i, m in enumerate(history)]
        evals[name] = (before, after, wall)
    print(f"{'run':<13} {'steps':>5} {'reward':>7} {'acc':>5} {'tools/traj':>10} {'branches/prompt':>15} {'tokens':>7}")
    for name, records in runs.items():
        for end, m in _windows(records, max(1, args.steps // 5)):
            print(f"{name:<13} {end:>5} {m['reward_mean']:>7.3f} {m['accuracy']:>5.2f} {m['tool_calls_per_traj']:>10.2f} "
                  f"{m['branches_per_prompt']:>15.2f} {m['sampled_tokens']:>7.0f}")
    print(f"\n{'held-out (24 tasks x 2)':<24} {'reward before':>13} {'after':>6} {'acc after':>9} {'tools/traj after':>16} {'train s':>8}")
    for name, (before, after, wall) in evals.items():
        print(f"{name:<24} {before['reward_mean']:>13.3f} {after['reward_mean']:>6.3f} {after['accuracy']:>9.2f} "
              f"{after['tool_calls_per_traj']:>16.2f} {wall:>8.1f}")
    print("plot:", plot_runs(runs, args.out / "arpo_vs_grpo.png"))


if __name__ == "__main__":
    main()
