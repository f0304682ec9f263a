"""CLI entry points: train from YAML, resume, SFT a saved checkpoint, export."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonloop.errors import ConfigError
from reasonloop.training.commands import export_command, read_trajectories, sft_command, train_command

pytest.importorskip("torch")

YAML = """\
out_dir: {out}
checkpoint_every: 1
deterministic: true
rollout: {{mode: grpo, group_size: 2, max_tokens: 4, max_steps: 1}}
optim: {{steps: 1, prompts_per_step: 1}}
logging: {{plots: false, store_trajectories: true}}
"""


def test_train_then_resume_from_yaml(tmp_path: Path) -> None:
    cfg = tmp_path / "train.yaml"
    cfg.write_text(YAML.format(out=tmp_path / "run"), encoding="utf-8")
    first = train_command(cfg, progress=False)
    assert first["step"] == 1 and "reward_mean" in first["last"]
    from reasonloop.trajectory.store import RunStore

    store = RunStore(tmp_path / "run" / "trajectories.db")
    assert len(store.finished_keys("step-1")) == 2  # the step's group of 2, scored and kept
    store.close()
    again = train_command(resume=tmp_path / "run", steps=2)
    assert again["step"] == 2
    with pytest.raises(ConfigError, match="config file"):
        train_command()
    cfg.write_text("optim: {stpes: 3}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"optim\.stpes: unknown key"):
        train_command(cfg)


def test_sft_and_export_commands(tmp_path: Path) -> None:
    from reasonloop.policy.hf import HFPolicyConfig
    from reasonloop.policy.tiny_model import save_tiny
    from reasonloop.training.config import RolloutSection
    from reasonloop.training.engine import HFEngine
    from reasonloop.training.setup import record_experts
    from reasonloop.training.toy import lookup_tasks, lookup_tool, toy_policy_pair

    tokenizer, model = toy_policy_pair(seed=2)
    save_tiny(model, tokenizer, tmp_path / "base")
    engine = HFEngine(model, tokenizer, HFPolicyConfig(device="cpu", template="chatml-tags"))
    trajs = record_experts(engine, lookup_tasks(3, seed=5), [lookup_tool()], RolloutSection(max_steps=3))
    jsonl = tmp_path / "experts.jsonl"
    jsonl.write_text("".join(t.to_json() + "\n" for t in trajs), encoding="utf-8")
    assert [t.token_ids() for t in read_trajectories(jsonl)] == [t.token_ids() for t in trajs]
    done = sft_command(jsonl, f"hf:{tmp_path / 'base'}", tmp_path / "tuned", steps=3, batch_size=3)
    assert done["steps"] == 3 and (tmp_path / "tuned" / "config.json").is_file()
    exported = export_command(jsonl, tmp_path / "x.parquet", fmt="trl")
    assert exported["skipped"] == [] and Path(exported["out"]).stat().st_size > 0
    (tmp_path / "bad.jsonl").write_text("{not json}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.jsonl:1"):
        read_trajectories(tmp_path / "bad.jsonl")
