"""Tiny real models for the local-policy tests, built in the test session (no downloads).

``tiny_policy`` is a random-init Qwen2 model: good for numerical checks (log-probs,
entropies, seeds, stopping). ``trained_episode(name)`` is a tiny model trained by
teacher forcing on one 3-turn tool episode written in chat template ``name``, so that
greedy decoding through the unmodified sampling loop reproduces the episode: random
weights never write a valid tool call, and steering the sampler would test the
steering instead of the loop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from reasonloop.policy.base import ToolSpec
from reasonloop.policy.templates import ChatTemplate, builtin_templates, render
from reasonloop.policy.tiny_model import DEFAULT_CORPUS, build_tiny_model, build_tiny_tokenizer

CALCULATOR = ToolSpec(
    name="calculator",
    description="Evaluate an arithmetic expression.",
    parameters={
        "type": "object",
        "properties": {"expression": {"type": "string", "description": "e.g. 2 + 3"}},
        "required": ["expression"],
    },
)


@contextlib.contextmanager
def single_torch_thread() -> Iterator[None]:
    """One intra-op thread: a tiny model runs faster so, and far faster on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass
class Episode:
    """A scripted 3-turn tool episode: what the model must write and what the world answers."""

    template: ChatTemplate
    messages: list[dict[str, Any]]
    tools: list[ToolSpec]
    turns: list[str]
    """Assistant texts, in order."""
    closes_turn: list[bool]
    """Whether the model ends each turn by sampling the turn-end token (else a stop string ends it)."""
    appended: list[list[dict[str, Any]]]
    """Messages the environment appends after each turn but the last."""

    def conversation(self) -> list[dict[str, Any]]:
        out = list(self.messages)
        for i, text in enumerate(self.turns):
            out.append({"role": "assistant", "content": text})
            if i < len(self.appended):
                out.extend(self.appended[i])
        return out


def make_episode(template: ChatTemplate) -> Episode:
    call = {
        "json": '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2 + 3"}}\n</tool_call>',
        "tags": "<calculator>2 + 3</calculator>",
    }[template.tool_format]
    return Episode(
        template=template,
        messages=[
            {"role": "system", "content": "You are a careful calculator."},
            {"role": "user", "content": "What is 2 + 3? Check it."},
        ],
        tools=[CALCULATOR],
        turns=[call, "The sum is 5. <answer>5</answer>", "Yes, I am sure: <answer>5</answer>"],
        closes_turn=[False, True, True],
        appended=[
            [{"role": "tool", "content": "5", "tool_call_id": "call_1"}],
            [{"role": "user", "content": "Are you sure?"}],
        ],
    )


@dataclass
class TrainedEpisode:
    episode: Episode
    tokenizer: Any
    model: Any
    stats: dict[str, float] = field(default_factory=dict)


def _training_ids(ep: Episode, tokenizer: Any, model: Any) -> tuple[list[int], list[int]]:
    """The episode's ids as a policy feeds them: prompt and appended ids from ``start``/``extend``,
    each assistant turn tokenised and closed with ``<|im_end|>``; the mask marks the assistant's ids."""
    from reasonloop.policy.base import Context
    from reasonloop.policy.hf import HFPolicy, HFPolicyConfig

    policy = HFPolicy(model, tokenizer, HFPolicyConfig(device="cpu", template=ep.template.name))
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    ctx = Context(messages=list(ep.messages), token_ids=policy.start(ep.messages, ep.tools))
    mask = [0] * len(ctx.token_ids or [])
    for i, text in enumerate(ep.turns):
        sampled = [*tokenizer.encode(text, add_special_tokens=False), im_end]
        ctx.messages.append({"role": "assistant", "content": text})
        ctx.token_ids = [*(ctx.token_ids or []), *sampled]
        mask += [1] * len(sampled)
        if i < len(ep.appended):
            forced = policy.extend(ctx, ep.appended[i], ep.tools)
            ctx.messages.extend(ep.appended[i])
            ctx.token_ids = [*ctx.token_ids, *forced]
            mask += [0] * len(forced)
    return list(ctx.token_ids or []), mask


def train_episode(template: ChatTemplate, *, max_steps: int = 600, target_loss: float = 0.005, seed: int = 0) -> TrainedEpisode:
    """Overfit a tiny model on one episode (teacher forcing, loss on the assistant's ids).

    Trains until the masked loss is under ``target_loss`` (greedy decoding then reproduces
    every turn): a fixed step count sat on a plateau for some templates after a library
    release changed the initialisation's numerics.
    """
    import torch

    ep = make_episode(template)
    schemas = [t.openai_schema() for t in ep.tools]
    text = render(template.source, ep.conversation(), schemas)
    tokenizer = build_tiny_tokenizer([*DEFAULT_CORPUS, text], vocab_size=512, chat_template=template.source)
    model = build_tiny_model(tokenizer, seed=seed)
    ids, mask = _training_ids(ep, tokenizer, model)
    inputs = torch.tensor([ids[:-1]])
    targets = torch.tensor(ids[1:])
    weights = torch.tensor(mask[1:], dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    model.train()
    loss = torch.tensor(0.0)
    with single_torch_thread():
        for _ in range(max_steps):
            logits = model(input_ids=inputs).logits[0]
            per_token = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
            loss = (per_token * weights).sum() / weights.sum()
            if float(loss.detach()) < target_loss:
                break
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    assert float(loss.detach()) < target_loss, f"{template.name}: loss {float(loss):.4f} after {max_steps} steps"
    return TrainedEpisode(ep, tokenizer, model, {"final_loss": float(loss.detach()), "tokens": float(len(ids))})


TEMPLATE_NAMES = builtin_templates().names()


@pytest.fixture(scope="session")
def trained_episode() -> Callable[[str], TrainedEpisode]:
    """``trained_episode(name)``: the trained tiny model for template ``name`` (built once per session)."""
    cache: dict[str, TrainedEpisode] = {}

    def get(name: str) -> TrainedEpisode:
        if name not in cache:
            cache[name] = train_episode(builtin_templates().get(name))
        return cache[name]

    return get


@pytest.fixture(scope="session")
def tiny_pair() -> tuple[Any, Any]:
    """A random-init tiny Qwen2 model and its tokenizer."""
    tokenizer = build_tiny_tokenizer()
    return build_tiny_model(tokenizer, seed=0), tokenizer


@pytest.fixture(scope="session")
def tiny_policy(tiny_pair: tuple[Any, Any]) -> Any:
    from reasonloop.policy.hf import HFPolicy, HFPolicyConfig

    model, tokenizer = tiny_pair
    return HFPolicy(model, tokenizer, HFPolicyConfig(device="cpu"))


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Run a test's tiny-model work on one CPU thread."""
    with single_torch_thread():
        yield
