"""A tiny model warm-started on the toy lookup task, built once per test session (no downloads)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass
class WarmToy:
    tokenizer: Any
    state: dict[str, Any]
    """Weights after the warm start (load into a fresh toy model)."""
    sft_loss: float

    def model(self) -> Any:
        from reasonloop.training.toy import toy_policy_pair

        _, model = toy_policy_pair(seed=0)
        model.load_state_dict(self.state)
        return model


@pytest.fixture(scope="session")
def warm_toy() -> WarmToy:
    """SFT (60 steps) on scripted lookup experts, half of which forget ``</answer>``."""
    pytest.importorskip("torch")
    from reasonloop.policy.hf import HFPolicyConfig
    from reasonloop.training.config import RolloutSection
    from reasonloop.training.engine import HFEngine
    from reasonloop.training.setup import record_experts
    from reasonloop.training.sft import SFTConfig, run_sft
    from reasonloop.training.toy import lookup_tasks, lookup_tool, toy_policy_pair, with_unclosed_answers

    with one_thread():
        tokenizer, model = toy_policy_pair(seed=0)
        engine = HFEngine(model, tokenizer, HFPolicyConfig(device="cpu", template="chatml-tags"))
        tasks = with_unclosed_answers(lookup_tasks(64, seed=1))
        experts = record_experts(engine, tasks, [lookup_tool()], RolloutSection(max_tokens=12, max_steps=3))
        history = run_sft(model, experts, SFTConfig(steps=60, batch_size=16, lr=3e-3), pad_id=tokenizer.pad_token_id)
    return WarmToy(tokenizer=tokenizer, state={k: v.clone() for k, v in model.state_dict().items()},
                   sft_loss=history[-1]["sft_loss"])


@pytest.fixture(autouse=True)
def _single_torch_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread, and far faster on a busy machine."""
    try:
        import torch  # noqa: F401
    except ImportError:
        yield
        return
    with one_thread():
        yield
