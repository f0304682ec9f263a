"""Train a tiny agent with ARPO (or GRPO) on CPU: warm start, RL, checkpoints, curves.

The model is a tiny random-init transformer with a tokenizer trained on the toy
lookup task (no download). A short SFT warm start on scripted experts comes first,
then RL through the same ReAct agent users run; metrics go to ``OUT/metrics.jsonl``,
checkpoints to ``OUT/checkpoints`` and the curves to ``OUT/curves.png``. Run it again
with ``--resume`` to continue from the last complete checkpoint.

    python examples/train_arpo.py --out runs/example --steps 20
    python examples/train_arpo.py --out runs/example --steps 30 --resume
"""

from __future__ import annotations

import argparse
from pathlib import Path

from reasonloop.training.config import load_config
from reasonloop.training.trainer import Trainer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/example"))
    parser.add_argument("--mode", choices=["arpo", "grpo"], default="arpo")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--sft-steps", type=int, default=60)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    if args.resume:
        trainer = Trainer.resume(args.out)
    else:
        config = load_config({
            "out_dir": str(args.out), "checkpoint_every": 5, "deterministic": True,
            "task": {"suite": "lookup", "n": 64},
            "rollout": {"mode": args.mode, "group_size": 8, "global_samples": 4, "max_tokens": 12, "max_steps": 3,
                        "window": 4},
            "optim": {"steps": args.steps, "prompts_per_step": 2, "lr": 5e-4},
            "algo": {"ppo_epochs": 2},
            "reward": {"correctness": ["exact"], "multi_tool_bonus": 0.0},
            "sft": {"steps": args.sft_steps},
        })
        trainer = Trainer(config)
    history = trainer.train(args.steps)
    print(f"{'step':>4} {'reward':>7} {'acc':>5} {'format':>6} {'tools':>5} {'branches':>8}")
    first = trainer.step - len(history) + 1
    for step, m in enumerate(history, first):
        print(f"{step:>4} {m['reward_mean']:>7.3f} {m['accuracy']:>5.2f} {m['format_ok']:>6.2f} "
              f"{m['tool_calls_per_traj']:>5.2f} {m['branches_per_prompt']:>8.2f}")
    print(f"step={trainer.step} checkpoints={trainer.checkpoint_dir} curves={trainer.out_dir / 'curves.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
