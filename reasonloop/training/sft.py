"""Supervised fine-tuning on recorded trajectories (cold starts), loss on policy tokens only.

Sequences come straight from trajectories: ``input_ids = traj.token_ids()`` and the
loss mask ``traj.loss_mask()`` (1 on what the policy wrote, 0 on the prompt, tool
results and template glue). Trajectories recorded without token ids cannot be used;
:class:`TeacherPolicy` records a task's scripted expert *with* a tokenising policy's
ids by running it through the real agent and tools, which is how expert data for a
local model is made.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reasonloop.bench.task import ExpertTurn, Task
from reasonloop.errors import ConfigError
from reasonloop.policy.base import Completion, Context, SamplingParams, ToolFormat, ToolSpec
from reasonloop.policy.parsing import parse_tool_calls, render_tool_call
from reasonloop.trajectory.schema import ToolCall, Trajectory, Usage

__all__ = ["SFTConfig", "TeacherPolicy", "run_sft", "sft_loss", "sft_rows"]


class TeacherPolicy:
    """Writes each task's scripted expert turns, tokenised by a local policy (ids exact).

    The turn is chosen by the user prompt (the last user message of the initial
    messages) and the number of assistant turns so far. A tool-call turn ends at its
    closing tag (as sampling does, at the stop string); a final turn ends with the
    turn-end token. An unknown prompt gets an error completion.
    """

    def __init__(self, base: Any, tasks: Sequence[Task]) -> None:
        """Args:
        base: A tokenising policy (:class:`~reasonloop.policy.hf.HFPolicy`); its
            ``start``/``extend``, tokenizer and tool format are used.
        tasks: Tasks with scripted experts, matched by prompt.
        """
        self.base = base
        self._turns = {t.prompt: t for t in tasks if t.expert}
        self._end = int(base.tokenizer.convert_tokens_to_ids(base.template.turn_end_tokens[0]))

    @property
    def name(self) -> str:
        return "teacher:" + self.base.name

    @property
    def tool_format(self) -> ToolFormat:
        return self.base.tool_format  # type: ignore[no-any-return]

    def start(self, messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]) -> list[int] | None:
        return self.base.start(messages, tools)  # type: ignore[no-any-return]

    def extend(self, context: Context, new_messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]) -> list[int] | None:
        return self.base.extend(context, new_messages, tools)  # type: ignore[no-any-return]

    def turn_for(self, context: Context) -> ExpertTurn | None:
        """The scripted turn to write next in ``context`` (``None`` when there is none)."""
        users = [m for m in context.messages if m.get("role") == "user"]
        task = self._turns.get(str(users[0].get("content", ""))) if users else None
        turn_no = sum(1 for m in context.messages if m.get("role") == "assistant")
        if task is None or turn_no >= len(task.expert):
            return None
        return task.expert[turn_no]

    async def generate(self, context: Context, tools: Sequence[ToolSpec], sampling: SamplingParams) -> Completion:
        turn = self.turn_for(context)
        if turn is None:
            return Completion(text="no scripted turn for this context", finish_reason="error", model=self.name)
        specs = {s.name: s for s in tools}
        calls = [ToolCall(name=n, arguments=dict(a)) for n, a in turn.tool_calls]
        text = turn.text + "".join(render_tool_call(c, self.tool_format, specs.get(c.name)) for c in calls)
        ids = [int(i) for i in self.base.tokenizer.encode(text, add_special_tokens=False)]
        if not calls:
            ids.append(self._end)
        parsed, errors = parse_tool_calls(text, tools, self.tool_format)
        return Completion(text=text, tool_calls=parsed, parse_errors=errors, finish_reason="stop", token_ids=ids,
                          usage=Usage(completion_tokens=len(ids)), model=self.name,
                          assistant_message={"role": "assistant", "content": text})


@dataclass(frozen=True, kw_only=True)
class SFTConfig:
    """Settings of :func:`run_sft`."""

    steps: int = 100
    """Optimiser steps."""
    batch_size: int = 8
    """Trajectories per step (sampled without replacement, reshuffled each epoch)."""
    lr: float = 1e-3
    """AdamW learning rate (constant)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    seed: int = 0
    """Order of the examples."""

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError("steps must be >= 0, batch_size >= 1 and lr > 0")


def sft_rows(trajectories: Sequence[Trajectory]) -> list[tuple[list[int], list[int]]]:
    """``(ids, mask)`` per trajectory; trajectories without ids or policy tokens are skipped."""
    rows = []
    for traj in trajectories:
        ids, mask = traj.token_ids(), traj.loss_mask()
        if traj.prompt_token_ids and sum(mask) > 0:
            rows.append((ids, mask))
    return rows


def sft_loss(model: Any, rows: Sequence[tuple[list[int], list[int]]], pad_id: int, *,
             bf16: bool = False) -> tuple[Any, dict[str, float]]:
    """Token-mean cross-entropy over the masked (policy) tokens of ``rows``.

    The vocabulary projection runs only from the first position whose next token any
    row trains on (a prompt needs hidden states, not logits). ``bf16``: the forward
    pass runs under bfloat16 autocast on the model's device (CPU or CUDA); the loss
    and the weights stay float32.
    """
    import contextlib

    import torch

    from reasonloop.policy.hf_forward import keep_logits, takes_logits_to_keep

    width = max(len(ids) for ids, _ in rows)
    device = next(model.parameters()).device
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.float32)
    attn = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (row_ids, row_mask) in enumerate(rows):
        ids[r, : len(row_ids)] = torch.tensor(row_ids)
        mask[r, : len(row_mask)] = torch.tensor(row_mask, dtype=torch.float32)
        attn[r, : len(row_ids)] = 1
    ids, mask, attn = ids.to(device), mask.to(device), attn.to(device)
    trained = mask[:, 1:].any(dim=0).nonzero()
    start = int(trained[0, 0]) if len(trained) and takes_logits_to_keep(model) else 0  # first target column
    cast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with cast:  # positions start..T-1 (the last predicts nothing)
        logits = model(input_ids=ids, attention_mask=attn,
                       **keep_logits(model, width - start if start else 0)).logits[:, -(width - start):][:, :-1]
    per_token = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), ids[:, start + 1 :],
                                                  reduction="none")  # [B, T-1-start]
    weights = mask[:, start + 1 :]
    loss = (per_token * weights).sum() / weights.sum().clamp_min(1.0)
    return loss, {"sft_loss": float(loss.detach()), "sft_tokens": float(weights.sum())}


def run_sft(model: Any, trajectories: Sequence[Trajectory], config: SFTConfig, *, pad_id: int) -> list[Mapping[str, float]]:
    """Fine-tune ``model`` in place on the policy tokens of ``trajectories``.

    Returns:
        One metrics dict per step (``sft_loss``, ``sft_tokens``).
    """
    import torch

    rows = sft_rows(trajectories)
    if not rows:
        raise ConfigError("no trajectory with token ids and policy tokens to train on")
    rng = random.Random(config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    order: list[int] = []
    history: list[Mapping[str, float]] = []
    model.train()
    try:
        for _ in range(config.steps):
            if len(order) < config.batch_size:
                fresh = list(range(len(rows)))
                rng.shuffle(fresh)
                order.extend(fresh)
            batch = [rows[i] for i in order[: config.batch_size]]
            del order[: config.batch_size]
            loss, metrics = sft_loss(model, batch, pad_id)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            history.append(metrics)
    finally:
        model.eval()
    return history
