"""The trainer on a GPU: tokens per second, peak memory and model FLOPs utilisation (MFU).

Run (one CUDA GPU; about two minutes with the defaults)::

    .venv/bin/python benchmarks/gpu_trainer.py [--mode arpo] [--engine batched] [--steps 6]

A Qwen2-shaped model of about 0.5B parameters (hidden 1024, 32 layers, 16 heads, MLP
4096) is built from a config with random weights: no checkpoint is needed, and the
numbers measure the trainer, not what the model knows. It trains on the toy lookup
task through the real agent graph and tool, ``--prompts`` prompts x ``--group``
samples per step, bf16 autocast in the update, after ``--warmup`` unmeasured steps.

Model FLOPs per step are counted the usual way (Kaplan et al.; PaLM's MFU):
``2 N`` per token the rollout engine ran through the model (prompt suffixes it
encoded and decode steps), ``6 N`` per token trained on (forward and backward), and
``2 N`` more per trained token when old log-probs are recomputed; ``N`` counts the
parameters without the embedding. Attention's own FLOPs are left out (sequences here
are short), so the MFU is a slight underestimate. It is reported against
``--peak-tflops`` (default 989: an H100 SXM's dense bf16 rate).

``--device cpu --hidden 64 --layers 2 --heads 4`` runs the same measurement on a CPU
(what the test does), to check the script, not to measure a GPU.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["model_flops", "non_embedding_params", "summarise"]


def non_embedding_params(model: Any) -> int:
    """Parameters of ``model`` without its input embedding (tied output weights count once)."""
    embedding = model.get_input_embeddings().weight
    return sum(p.numel() for p in model.parameters() if p is not embedding)


def model_flops(n_params: int, *, rollout_tokens: float, trained_tokens: float, recompute_old: bool) -> float:
    """Model FLOPs of one step: ``2N`` per rollout token, ``6N`` (+``2N`` to recompute old log-probs) per trained one."""
    return 2.0 * n_params * rollout_tokens + (8.0 if recompute_old else 6.0) * n_params * trained_tokens


def summarise(history: Sequence[Mapping[str, float]], n_params: int, *, recompute_old: bool,
              peak_tflops: float) -> dict[str, float]:
    """Medians over the measured steps: tokens/s, step and rollout seconds, achieved TFLOP/s and MFU."""
    rates, tflops = [], []
    for m in history:
        trained = m["tokens_per_s"] * m["step_s"]  # the step's training-row tokens
        flops = model_flops(n_params, rollout_tokens=m["engine_computed_tokens"], trained_tokens=trained,
                            recompute_old=recompute_old)
        rates.append(m["tokens_per_s"])
        tflops.append(flops / m["step_s"] / 1e12)
    achieved = statistics.median(tflops)
    return {"tokens_per_s": statistics.median(rates), "step_s": statistics.median(m["step_s"] for m in history),
            "rollout_s": statistics.median(m["rollout_s"] for m in history), "achieved_tflops": achieved,
            "mfu": achieved / peak_tflops}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--mode", choices=("grpo", "arpo"), default="arpo")
    parser.add_argument("--engine", choices=("prefix_reuse", "batched"), default="batched")
    parser.add_argument("--prompts", type=int, default=8, help="prompts per step")
    parser.add_argument("--group", type=int, default=8, help="trajectories per prompt")
    parser.add_argument("--max-tokens", type=int, default=64, help="most tokens per policy turn")
    parser.add_argument("--steps", type=int, default=6, help="measured steps")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured steps first")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="the device's dense bf16 TFLOP/s")
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    import torch

    from reasonloop.training.config import load_config
    from reasonloop.training.trainer import Trainer

    args = _parser().parse_args(argv)
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark measures a GPU (--device cpu checks the script only)")
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True  # the rollout engine samples with the fp32 master weights
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as out:
        cfg = load_config({
            "seed": 0, "out_dir": out, "checkpoint_every": 0,
            "model": {"kind": "toy", "hidden": args.hidden, "layers": args.layers, "heads": args.heads,
                      "device": args.device},
            "task": {"suite": "lookup", "n": 256},
            "rollout": {"mode": args.mode, "group_size": args.group, "global_samples": max(1, args.group // 2),
                        "max_tokens": args.max_tokens, "max_steps": 3, "engine": args.engine},
            "optim": {"steps": args.warmup + args.steps, "prompts_per_step": args.prompts, "lr": 1e-5,
                      "micro_batch_size": args.prompts * args.group, "bf16": True},
            "logging": {"plots": False},
        })
        trainer = Trainer(cfg)
        n_params = non_embedding_params(trainer.model)
        started = time.perf_counter()
        history = [trainer.train_step(step) for step in range(1, args.warmup + args.steps + 1)][args.warmup:]
        wall = time.perf_counter() - started
        trainer.engine.close()
    summary = summarise(history, n_params, recompute_old=cfg.algo.old_logprobs == "recompute",
                        peak_tflops=args.peak_tflops)
    summary["params_non_embedding"] = float(n_params)
    summary["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    device = torch.cuda.get_device_name() if cuda else "cpu"
    print(f"{device}: {n_params / 1e6:.0f}M non-embedding parameters, {args.mode}/{args.engine}, "
          f"{args.prompts} prompts x {args.group}, {args.steps} measured steps ({wall:.0f}s with warm-up)")
    for key, value in summary.items():
        print(f"  {key:<22} {value:,.4g}")
    return summary


if __name__ == "__main__":
    main()
