"""Property: any trajectory survives store -> get, JSONL and Parquet exactly.

``nan != nan``, so equality is checked on ``model_dump_json()`` (which writes NaN and
the infinities as JSON constants) rather than on the models.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reasonloop.trajectory import (
    EpisodeRow,
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
    Usage,
    export_jsonl,
    export_parquet,
    read_jsonl,
    read_parquet,
)

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)  # includes -0.0, subnormals, nan, +-inf
TEXT = st.text(max_size=20)  # any code point but surrogates: emoji, RTL, NUL, U+2028...
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | FLOATS | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
JSON_OBJECT = st.dictionaries(TEXT, JSON, max_size=3)
TOKEN_IDS = st.lists(st.integers(min_value=0, max_value=2**31 - 1), max_size=12)
OPTIONAL_TEXT = st.none() | TEXT


@st.composite
def policy_steps(draw: st.DrawFn) -> PolicyStep:
    ids = draw(TOKEN_IDS)
    aligned = st.none() | st.lists(FLOATS, min_size=len(ids), max_size=len(ids))
    return PolicyStep(
        node=draw(TEXT),
        started_at=draw(FLOATS),
        token_ids=ids,
        text=draw(TEXT),
        logprobs=draw(aligned),
        entropies=draw(aligned),
        entropy_kind=draw(st.sampled_from(["exact", "topk", "none"])),
        top_k=draw(st.none() | st.integers(1, 20)),
        finish_reason=draw(OPTIONAL_TEXT),
        tool_calls=draw(st.lists(tool_calls(), max_size=2)),
        parse_errors=draw(st.lists(TEXT, max_size=2)),
        usage=Usage(prompt_tokens=draw(st.integers(0, 10**6)), cost_usd=draw(st.none() | FLOATS)),
        model=draw(TEXT),
        sampling=draw(JSON_OBJECT),
        cached=draw(st.booleans()),
    )


def tool_calls() -> st.SearchStrategy[ToolCall]:
    return st.builds(ToolCall, id=TEXT, name=TEXT, arguments=JSON_OBJECT, raw=OPTIONAL_TEXT)


STEPS = st.one_of(
    policy_steps(),
    st.builds(
        ToolStep,
        token_ids=TOKEN_IDS,
        call=tool_calls(),
        result=st.builds(
            ToolResult,
            status=st.sampled_from(list(ToolStatus)),
            output=TEXT,
            error=OPTIONAL_TEXT,
            duration_s=FLOATS,
            truncated=st.booleans(),
            data=st.none() | JSON_OBJECT,
        ),
    ),
    st.builds(
        MemoryStep,
        op=st.sampled_from(["read", "search", "write", "delete"]),
        namespace=st.lists(TEXT, max_size=2),
        key=OPTIONAL_TEXT,
        query=OPTIONAL_TEXT,
        items=st.lists(JSON_OBJECT, max_size=2),
    ),
    st.builds(NoteStep, text=TEXT, role=OPTIONAL_TEXT, data=JSON_OBJECT, token_ids=TOKEN_IDS),
)


@st.composite
def trajectories(draw: st.DrawFn) -> Trajectory:
    branch = draw(st.booleans())
    return Trajectory(
        id=draw(st.text(min_size=1, max_size=12)),
        run_id=draw(TEXT),
        task_id=draw(TEXT),
        sample=draw(INT64),
        seed=draw(st.none() | INT64),
        parent_id=draw(st.text(min_size=1, max_size=12)) if branch else None,
        fork_step=draw(st.integers(0, 50)) if branch else None,
        agent=draw(TEXT),
        model=draw(TEXT),
        messages=draw(st.lists(JSON_OBJECT, max_size=2)),
        prompt_token_ids=draw(TOKEN_IDS),
        steps=draw(st.lists(STEPS, max_size=5)),
        final_answer=draw(OPTIONAL_TEXT),
        status=draw(st.sampled_from(["finished", "truncated", "error"])),
        error=draw(OPTIONAL_TEXT),
        rewards=draw(st.lists(st.builds(Reward, name=TEXT, value=FLOATS, explanation=OPTIONAL_TEXT), max_size=3)),
        metrics=draw(st.dictionaries(TEXT, FLOATS, max_size=3)),
        metadata=draw(JSON_OBJECT),
        created_at=draw(FLOATS),
        finished_at=draw(st.none() | FLOATS),
    )


def _comparable(row: EpisodeRow) -> dict[str, Any]:
    # NaN is not equal to itself: compare it as a marker.
    return {k: "nan" if isinstance(v, float) and math.isnan(v) else v for k, v in dataclasses.asdict(row).items()}


def _dumps(trajs: Any) -> list[str]:
    return [t.model_dump_json() for t in trajs]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(trajectories(), min_size=1, max_size=3, unique_by=lambda t: t.id))
def test_round_trip_is_lossless(trajs: list[Trajectory]) -> None:
    expected = _dumps(trajs)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with RunStore(root / "runs.sqlite", synchronous="NORMAL") as store:  # durability is tested elsewhere
            stored = [store.put(t) for t in trajs]
            # Duplicate keys keep their first episode; everything stored reads back exactly.
            kept = [t for t, new in zip(trajs, stored, strict=True) if new]
            assert len({t.key for t in trajs}) == len(kept)
            assert _dumps(store.get(t.id) for t in kept) == _dumps(kept)
            assert _dumps(store.iter_trajectories()) == _dumps(kept)
            flat = [_comparable(dataclasses.replace(r, row_id=None)) for r in store.iter_episodes()]
            assert flat == [_comparable(EpisodeRow.from_trajectory(t)) for t in kept]
        assert export_jsonl(trajs, root / "t.jsonl") == len(trajs)
        assert _dumps(read_jsonl(root / "t.jsonl")) == expected
        assert export_parquet(trajs, root / "t.parquet") == len(trajs)
        assert _dumps(read_parquet(root / "t.parquet")) == expected
