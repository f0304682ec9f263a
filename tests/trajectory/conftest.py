"""Fixtures for the trajectory tests: realistic finished episodes and fresh stores."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reasonloop.trajectory import (
    MemoryStep,
    NoteStep,
    PolicyStep,
    Reward,
    RunStore,
    ToolCall,
    ToolResult,
    ToolStatus,
    ToolStep,
    Trajectory,
)

MakeTrajectory = Callable[..., Trajectory]


def build_trajectory(
    *, run_id: str = "run-a", task_id: str = "task-0", sample: int = 0, seed: int | None = None, **fields: object
) -> Trajectory:
    """A finished episode with one step of every kind, deterministic in its key."""
    rng = random.Random(f"{run_id}/{task_id}/{sample}/{seed}")
    sampled = [rng.randrange(50_000) for _ in range(12)]
    forced = [rng.randrange(50_000) for _ in range(5)]
    steps = [
        PolicyStep(
            node="agent",
            text="Let me compute 6*7 with Python.",
            token_ids=sampled,
            logprobs=[-rng.random() for _ in sampled],
            entropies=[rng.random() for _ in sampled],
            entropy_kind="exact",
            tool_calls=[ToolCall(id="call_1", name="python", arguments={"code": "print(6*7)"})],
            model="tiny",
        ),
        ToolStep(
            node="tools",
            call=ToolCall(id="call_1", name="python", arguments={"code": "print(6*7)"}),
            result=ToolResult(status=ToolStatus.OK, output="42\n"),
            token_ids=forced,
        ),
        MemoryStep(op="write", namespace=["facts"], key="answer", items=[{"value": 42}]),
        NoteStep(text="verifier: exact match", data={"score": 1.0}),
    ]
    values: dict[str, object] = {
        "run_id": run_id,
        "task_id": task_id,
        "sample": sample,
        "seed": seed,
        "agent": "react",
        "model": "tiny",
        "messages": [{"role": "user", "content": "What is 6*7?"}],
        "prompt_token_ids": [1, 2, 3],
        "steps": steps,
        "final_answer": "42",
        "status": "finished",
        "rewards": [Reward(name="correct", value=1.0, source="exact_match")],
    }
    values.update(fields)
    return Trajectory.model_validate(values)


@pytest.fixture
def make_trajectory() -> MakeTrajectory:
    """Factory for finished episodes: ``make_trajectory(task_id=..., sample=..., **overrides)``."""
    return build_trajectory


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    """A fresh run store in a temporary directory."""
    with RunStore(tmp_path / "runs.sqlite") as s:
        yield s
