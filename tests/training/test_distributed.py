"""``accelerate launch`` with 2 CPU processes (gloo) takes the same steps as one process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

SCRIPT = """
import json, sys
from reasonloop.training.config import load_config
from reasonloop.training.trainer import Trainer
Trainer(load_config(json.loads(open(sys.argv[1]).read()))).train()
"""


def _config(model_dir: Path, out: Path) -> dict[str, Any]:
    return {
        "seed": 0, "out_dir": str(out), "checkpoint_every": 0, "deterministic": True,
        "model": {"kind": "hf", "path": str(model_dir), "template": "chatml-tags", "device": "cpu"},
        "task": {"suite": "lookup", "n": 64, "seed": 0},
        "rollout": {"mode": "arpo", "group_size": 8, "global_samples": 4, "max_tokens": 12, "max_steps": 3, "window": 4},
        "optim": {"steps": 2, "prompts_per_step": 2, "lr": 1e-3, "micro_batch_size": 16},
        "reward": {"correctness": ["exact"], "multi_tool_bonus": 0.0}, "logging": {"plots": False},
    }


@pytest.mark.slow
def test_two_processes_match_one(tmp_path: Path, warm_toy: Any) -> None:
    launcher = shutil.which("accelerate") or str(Path(sys.executable).with_name("accelerate"))
    if not Path(launcher).exists():
        pytest.skip("accelerate's launcher is not installed")
    from reasonloop.policy.tiny_model import save_tiny
    from reasonloop.training.checkpoint import load_checkpoint
    from reasonloop.training.config import load_config
    from reasonloop.training.trainer import Trainer

    model_dir = save_tiny(warm_toy.model(), warm_toy.tokenizer, tmp_path / "model")
    single = Trainer(load_config(_config(model_dir, tmp_path / "one")))
    single.train()
    cfg = tmp_path / "two.json"
    cfg.write_text(json.dumps(_config(model_dir, tmp_path / "two")), encoding="utf-8")
    script = tmp_path / "train.py"
    script.write_text(SCRIPT, encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
         "--dynamo_backend", "no", "--main_process_port", "29517", str(script), str(cfg)],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    tensors, state = load_checkpoint(tmp_path / "two" / "checkpoints" / "step-00000002")
    assert state["step"] == 2
    start = warm_toy.state
    want = single.model.state_dict()
    assert any(not torch.equal(want[k], start[k]) for k in want)
    for name, value in tensors["model"].items():
        torch.testing.assert_close(value, want[name], atol=2e-5, rtol=1e-4)
    one = [json.loads(x) for x in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    two = [json.loads(x) for x in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert [r["reward_mean"] for r in two] == pytest.approx([r["reward_mean"] for r in one], abs=1e-6)
    assert [r["trained_tokens"] for r in two] == [r["trained_tokens"] for r in one]
