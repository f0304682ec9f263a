"""Atomic checkpoints: complete or ignored, RNG states restored exactly, a killed write leaves the previous one."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reasonloop.errors import ConfigError
from reasonloop.training.checkpoint import (
    COMPLETE,
    capture_rng,
    complete_checkpoints,
    latest_checkpoint,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)

torch = pytest.importorskip("torch")


def test_save_load_keep_and_ignore_incomplete(tmp_path: Path) -> None:
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, {"model": {"w": torch.full((2,), float(step))}}, {"data_position": step}, keep=2)
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["step-00000002", "step-00000003"]
    broken = tmp_path / "step-00000004"
    broken.mkdir()
    (broken / "model.pt").write_bytes(b"half")  # no marker: a write that never finished
    (tmp_path / ".tmp-step-00000005-1").mkdir()
    latest = latest_checkpoint(tmp_path)
    assert latest is not None and latest.name == "step-00000003"
    assert not (tmp_path / ".tmp-step-00000005-1").exists()
    tensors, state = load_checkpoint(latest)
    assert torch.equal(tensors["model"]["w"], torch.full((2,), 3.0)) and state == {"data_position": 3, "step": 3}
    (latest / "state.json").unlink()  # the marker names a file that is gone
    assert latest_checkpoint(tmp_path).name == "step-00000002"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="not a complete checkpoint"):
        load_checkpoint(broken)


def test_rng_states_round_trip() -> None:
    import numpy as np

    state = capture_rng()
    want = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    restore_rng(state)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == want


KILLER = textwrap.dedent("""
    import os, signal, sys
    import reasonloop.training.checkpoint as ck
    from reasonloop.training.config import load_config
    from reasonloop.training.trainer import Trainer

    real = ck._fsync_file
    def fsync_then_die(path):
        real(path)
        if path.name == "optimizer.pt" and "step-00000002" in str(path):
            os.kill(os.getpid(), signal.SIGKILL)  # mid-write of the second checkpoint
    ck._fsync_file = fsync_then_die
    cfg = load_config({"out_dir": sys.argv[1], "checkpoint_every": 1, "deterministic": True,
                       "rollout": {"mode": "grpo", "group_size": 2, "max_tokens": 6, "max_steps": 2},
                       "optim": {"steps": 3, "prompts_per_step": 1}, "logging": {"plots": False}})
    Trainer(cfg).train()
""")


def test_killed_during_a_checkpoint_write_resumes_from_the_previous_one(tmp_path: Path) -> None:
    from reasonloop.training.trainer import Trainer

    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", KILLER, str(run)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    leftovers = list((run / "checkpoints").glob(".tmp-*"))
    assert leftovers and not (leftovers[0] / COMPLETE).exists()
    trainer = Trainer.resume(run)
    assert trainer.step == 1
    assert not list((run / "checkpoints").glob(".tmp-*"))
    tensors, _ = load_checkpoint(run / "checkpoints" / "step-00000001")
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, tensors["model"][name])
