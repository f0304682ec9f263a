"""Agentic RL: rollouts through the agent graphs (GRPO, ARPO branching), rewards,
advantages, losses, the trainer, checkpoints, SFT and export.

``import reasonloop.training`` stays free of torch: the torch-backed names
(``Trainer``, ``HFEngine``, ``BatchedHFEngine``, ``ServerEngine``, ``VLLMEngine``) load on first
access.
"""

from __future__ import annotations

from typing import Any

from reasonloop.training.advantages import ADVANTAGES, GroupShape, grpo_advantages, hard_advantages, rloo_advantages
from reasonloop.training.branching import BRANCH_RULES, BranchConfig, BranchDecision, decide_branch, window_entropy
from reasonloop.training.config import TrainConfig, config_hash, load_config
from reasonloop.training.rewards import REWARDS, RewardStack
from reasonloop.training.rollout import ROLLOUTS, Group, RolloutConfig, rollout_group

__all__ = [
    "ADVANTAGES",
    "BRANCH_RULES",
    "REWARDS",
    "ROLLOUTS",
    "BatchedHFEngine",
    "BranchConfig",
    "BranchDecision",
    "Group",
    "GroupShape",
    "HFEngine",
    "RewardStack",
    "RolloutConfig",
    "ServerEngine",
    "VLLMEngine",
    "TrainConfig",
    "Trainer",
    "config_hash",
    "decide_branch",
    "grpo_advantages",
    "hard_advantages",
    "load_config",
    "rloo_advantages",
    "rollout_group",
    "window_entropy",
]

_LAZY = {
    "Trainer": "reasonloop.training.trainer",
    "HFEngine": "reasonloop.training.engine",
    "BatchedHFEngine": "reasonloop.training.batched",
    "ServerEngine": "reasonloop.training.server_engine",
    "VLLMEngine": "reasonloop.training.vllm_engine",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
