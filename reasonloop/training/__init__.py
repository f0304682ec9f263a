"""Agentic RL: branching rule, advantages, losses (pure functions) and the trainer.

``import reasonloop.training`` stays free of torch; ``reasonloop.training.losses``
imports it.
"""

from reasonloop.training.advantages import ADVANTAGES, GroupShape, grpo_advantages, hard_advantages, rloo_advantages
from reasonloop.training.branching import BRANCH_RULES, BranchConfig, BranchDecision, decide_branch, window_entropy

__all__ = [
    "ADVANTAGES",
    "BRANCH_RULES",
    "BranchConfig",
    "BranchDecision",
    "GroupShape",
    "decide_branch",
    "grpo_advantages",
    "hard_advantages",
    "rloo_advantages",
    "window_entropy",
]
