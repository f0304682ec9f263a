"""Trainer throughput, side by side: our trainer versus TRL's GRPOTrainer (tokens per second).

Run: ``.venv/bin/python benchmarks/trainer_throughput.py [--steps N]`` (needs ``trl``;
prints why not and exits 0 without it).

Same tiny model (built from the same seed), same prompts (the toy lookup tasks, rendered
by the same chat template), same batch: 2 prompts x 8 samples = 16 sequences per
optimiser step, one optimisation pass per batch, no KL/reference model, AdamW, lr 5e-4,
one CPU thread for both. Tokens per second = (prompt + generated tokens of the step's
sequences) / wall time of the step, rollout included, after one warm-up step.

The work is not identical, and the table says so: our rollouts are multi-turn agent
episodes (a tool call, the tool's result appended, a second turn), TRL's are
single-turn completions of the same length budget (TRL's tool loop needs a chat template
with a tool-call response schema, which the tiny tokenizer does not have).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import time
from pathlib import Path
from typing import Any

STEPS_DEFAULT = 6


def _ours(tokenizer: Any, model: Any, steps: int, out: Path, engine: str) -> tuple[float, float]:
    from reasonloop.training.config import load_config
    from reasonloop.training.trainer import Trainer

    cfg = load_config({
        "seed": 0, "out_dir": str(out), "checkpoint_every": 0, "deterministic": True,
        "rollout": {"mode": "grpo", "group_size": 8, "max_tokens": 12, "max_steps": 2, "engine": engine},
        "optim": {"steps": steps + 1, "prompts_per_step": 2, "lr": 5e-4, "micro_batch_size": 16},
        "reward": {"correctness": ["exact"], "multi_tool_bonus": 0.0}, "logging": {"plots": False},
    })
    history = Trainer(cfg, model=model, tokenizer=tokenizer).train()[1:]  # first step: warm-up
    tokens = sum(m["tokens_per_s"] * m["step_s"] for m in history)
    return tokens, sum(m["step_s"] for m in history)


def _system_text(tokenizer: Any) -> str:
    """The system turn our agent's prompt carries (tool list included), so both prompts match in length."""
    from reasonloop.policy.templates import render
    from reasonloop.training.toy import lookup_tool

    text = render(tokenizer.chat_template, [{"role": "user", "content": "x"}], [lookup_tool().spec.openai_schema()])
    return str(text.split("<|im_start|>system\n", 1)[1].split("<|im_end|>", 1)[0])


def _trl(tokenizer: Any, model: Any, steps: int, out: Path) -> tuple[float, float]:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from reasonloop.training.toy import lookup_tasks

    system = _system_text(tokenizer)
    data = Dataset.from_list([{"prompt": [{"role": "system", "content": system}, {"role": "user", "content": t.prompt}]}
                              for t in lookup_tasks(64, seed=0)])

    def reward(completions: list[Any], **_: Any) -> list[float]:
        return [1.0 if "</answer>" in str(c) else -1.0 for c in completions]

    class Clock(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.marks: list[tuple[float, float]] = []

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "num_tokens" in logs:
                self.marks.append((time.perf_counter(), float(logs["num_tokens"])))

    args = GRPOConfig(
        output_dir=str(out), use_cpu=True, per_device_train_batch_size=16, num_generations=8,
        max_completion_length=24, learning_rate=5e-4, beta=0.0, num_iterations=1, temperature=1.0,
        max_steps=steps + 1, logging_steps=1, report_to="none", save_strategy="no", bf16=False,
        lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, seed=0, dataloader_num_workers=0,
    )
    clock = Clock()
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=data,
                          processing_class=tokenizer, callbacks=[clock])
    trainer.train()
    (t0, n0), (t1, n1) = clock.marks[0], clock.marks[-1]
    return n1 - n0, t1 - t0


def main() -> None:
    import torch

    from reasonloop.training.setup import warm_toy

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=STEPS_DEFAULT)
    parser.add_argument("--out", type=Path, default=Path("runs/throughput"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    tokenizer, model = warm_toy(sft_steps=20)
    print(f"{'trainer':<30} {'steps':>5} {'tokens':>8} {'seconds':>8} {'tokens/s':>9}")
    ours: dict[str, float] = {}
    for engine in ("prefix_reuse", "batched"):
        tokens, seconds = _ours(tokenizer, copy.deepcopy(model), args.steps, args.out / engine, engine)
        ours[engine] = tokens / seconds
        print(f"{'reasonloop, ' + engine:<30} {args.steps:>5} {tokens:>8.0f} {seconds:>8.2f} {tokens / seconds:>9.1f}")
    if importlib.util.find_spec("trl") is None:
        print("TRL is not installed (pip install trl): no side-by-side number")
        return
    trl_tokens, trl_s = _trl(tokenizer, copy.deepcopy(model), args.steps, args.out / "trl")
    print(f"{'TRL GRPOTrainer':<30} {args.steps:>5} {trl_tokens:>8.0f} {trl_s:>8.2f} {trl_tokens / trl_s:>9.1f}")
    for engine, rate in ours.items():
        print(f"ratio ours ({engine}) / TRL: {rate / (trl_tokens / trl_s):.2f}x")


if __name__ == "__main__":
    main()
