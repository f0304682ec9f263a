"""The training config: typos are errors that name the key; the hash decides what may resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonloop.errors import ConfigError
from reasonloop.training.config import config_hash, load_config


def test_a_misspelt_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("rollout:\n  mode: arpo\n  gropu_size: 8\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"rollout\.gropu_size: unknown key"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"optim\.lr"):
        load_config({"optim": {"lr": -1}})
    with pytest.raises(ConfigError, match=r"rollout\.mode"):
        load_config({"rollout": {"mode": "ppo"}})
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_yaml_round_trip_and_hash(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("seed: 3\nrollout:\n  mode: grpo\n  group_size: 4\noptim:\n  steps: 5\n", encoding="utf-8")
    cfg = load_config(path)
    assert cfg.seed == 3 and cfg.rollout.mode == "grpo" and cfg.rollout.group_size == 4 and cfg.optim.steps == 5
    more_steps = load_config({**cfg.model_dump(), "optim": {**cfg.optim.model_dump(), "steps": 50}, "out_dir": "x"})
    assert config_hash(more_steps) == config_hash(cfg)
    other_lr = load_config({**cfg.model_dump(), "optim": {**cfg.optim.model_dump(), "lr": 0.5}})
    assert config_hash(other_lr) != config_hash(cfg)


def test_config_choices_match_the_registries() -> None:
    from typing import get_args

    pytest.importorskip("torch")
    from reasonloop.training.advantages import ADVANTAGES
    from reasonloop.training.config import AlgoSection, RolloutSection
    from reasonloop.training.losses import LOSSES
    from reasonloop.training.rollout import ROLLOUTS

    assert sorted(get_args(AlgoSection.model_fields["loss"].annotation)) == LOSSES.names()
    assert sorted(get_args(AlgoSection.model_fields["advantage"].annotation)) == ADVANTAGES.names()
    assert sorted(get_args(RolloutSection.model_fields["mode"].annotation)) == ROLLOUTS.names()
