"""benchmarks/gpu_trainer.py: the FLOP accounting by hand, and the whole script on a CPU at toy size.

The GPU measurement itself (a 0.5B model in bf16) needs a CUDA device; this keeps the
script runnable for whoever has one.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_trainer", ROOT / "benchmarks" / "gpu_trainer.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_trainer"] = module
    spec.loader.exec_module(module)
    return module


def test_model_flops_and_mfu_by_hand() -> None:
    gpu = _script()
    # 1M parameters, 100 rollout tokens (2N each), 50 trained tokens (6N + 2N recompute each)
    assert gpu.model_flops(10**6, rollout_tokens=100, trained_tokens=50, recompute_old=True) == 2e6 * 100 + 8e6 * 50
    assert gpu.model_flops(10**6, rollout_tokens=100, trained_tokens=50, recompute_old=False) == 2e6 * 100 + 6e6 * 50
    steps = [  # 1000 trained tokens in 2 s, 3000 engine tokens: (2*3000 + 8*1000) * 1e9 FLOPs / 2 s = 7 TFLOP/s
        {"tokens_per_s": 500.0, "step_s": 2.0, "rollout_s": 1.5, "engine_computed_tokens": 3000.0},
        {"tokens_per_s": 250.0, "step_s": 4.0, "rollout_s": 3.0, "engine_computed_tokens": 3000.0},  # 3.5
        {"tokens_per_s": 1000.0, "step_s": 1.0, "rollout_s": 0.5, "engine_computed_tokens": 3000.0},  # 14
    ]
    out = gpu.summarise(steps, 10**9, recompute_old=True, peak_tflops=70.0)
    assert out["achieved_tflops"] == pytest.approx(7.0)
    assert out["mfu"] == pytest.approx(0.1)
    assert out["tokens_per_s"] == 500.0 and out["step_s"] == 2.0 and out["rollout_s"] == 1.5


def test_script_runs_on_cpu_at_toy_size(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    gpu = _script()
    summary = gpu.main(["--device", "cpu", "--hidden", "32", "--layers", "1", "--heads", "2", "--prompts", "2",
                        "--group", "2", "--max-tokens", "8", "--steps", "2", "--warmup", "1"])
    assert summary["tokens_per_s"] > 0 and 0 < summary["mfu"] < 1
    h = 32  # one Qwen2 layer: q, k, v, o and a 4h-wide gated MLP, q/k/v biases, two norms; the final norm
    assert summary["params_non_embedding"] == (4 * h * h + 3 * h * 4 * h + 3 * h + 2 * h) + h
    assert math.isnan(summary["peak_memory_gib"])
    assert "tokens_per_s" in capsys.readouterr().out
