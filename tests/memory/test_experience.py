"""Experience library: distillation, provenance, credit, TTL fading, pruning."""

from __future__ import annotations

from typing import Any

import pytest

from reasonloop.memory import ExperienceLibrary, Lesson, LibraryConfig, MemoryStore, Scope, distill
from reasonloop.memory.experience import error_shape, usefulness
from reasonloop.trajectory.schema import MemoryStep, ToolCall, ToolResult, ToolStatus, ToolStep


def _call(name: str, args: dict[str, Any], ok: bool, error: str = "") -> ToolStep:
    result = ToolResult(status=ToolStatus.OK, output="42") if ok else ToolResult(status=ToolStatus.ERROR, error=error)
    return ToolStep(call=ToolCall(name=name, arguments=args), result=result)


def test_usefulness_and_error_shape() -> None:
    assert usefulness(0, 0) == 0.5 and usefulness(3, 0) == 0.8 and usefulness(0, 3) == 0.2
    assert error_shape("invalid date '03/14/2024': use 2024-03-14") == error_shape("invalid date '1/2/2023': use 2023-01-02")


def test_distill_failure_fix_and_success() -> None:
    steps = [
        _call("days", {"start": "03/14/2024"}, ok=False, error="invalid date '03/14/2024': dates must be YYYY-MM-DD"),
        _call("days", {"start": "2024-03-14"}, ok=True),
        _call("other", {"x": 1}, ok=True),
    ]
    lessons = distill("How many days?", steps, trajectory_id="t1", success=True)
    failure = next(le for le in lessons if le.kind == "failure")
    assert failure.tool == "days" and failure.provenance == ["t1"]
    assert "failed: invalid date" in failure.text and 'It worked when called with {"start": "2024-03-14"}' in failure.text
    assert {le.tool for le in lessons if le.kind == "success"} == {"days", "other"}
    assert all(le.kind == "failure" for le in distill("t", steps, trajectory_id="t1", success=False))


def test_same_lesson_merges_provenance_and_credit_counts(store: MemoryStore) -> None:
    lib = ExperienceLibrary(store, Scope(family="dates"))
    for i, day in enumerate(["03/14/2024", "01/02/2023"]):
        steps = [_call("days", {"start": day}, ok=False, error=f"invalid date '{day}': dates must be YYYY-MM-DD")]
        report = lib.learn("How many days from x to y?", steps, trajectory_id=f"t{i}", success=False)
        assert (len(report.added), len(report.merged)) == ((1, 0) if i == 0 else (0, 1))
    [lesson] = lib.lessons()
    assert lesson.provenance == ["t0", "t1"]
    hits = lib.recall("how many days between two dates")
    assert [h.key for h in hits] == [lesson.key]
    # An episode that recalled the lesson and then succeeded credits it.
    recalled = MemoryStep(op="search", namespace=list(lib.namespace), items=[h.as_dict() for h in hits])
    report = lib.learn("How many days?", [recalled], trajectory_id="t2", success=True)
    assert report.credited == [lesson.key]
    lib.learn("How many days?", [recalled], trajectory_id="t3", success=True)
    lib.learn("How many days?", [recalled], trajectory_id="t4", success=False)
    [after] = lib.lessons()
    assert (after.successes, after.failures, after.recalls) == (2, 1, 3)
    assert after.usefulness == pytest.approx(3 / 5)
    assert [e["op"] for e in store.history(lib.namespace, lesson.key)].count("credit") == 3
    # Recalls of another scope's lessons are not credited here.
    other = ExperienceLibrary(store, Scope(family="money"))
    assert other.learn("x", [recalled], trajectory_id="t5", success=True).credited == []


def test_useless_lessons_fade(store: MemoryStore, clock: Any) -> None:
    cfg = LibraryConfig(ttl_minutes=60.0, prune_min_trials=3, prune_below=0.3)
    lib = ExperienceLibrary(store, Scope(), cfg)
    good = Lesson(kind="failure", tool="a", text="tool a wants upper-case codes", error="bad code", provenance=["t"])
    bad = Lesson(kind="failure", tool="b", text="tool b wants lower-case codes", error="other", provenance=["t"])
    idle = Lesson(kind="failure", tool="c", text="tool c is never asked about", error="x", provenance=["t"])
    for lesson in (good, bad, idle):
        lib.add(lesson)
    for _ in range(3):
        lib.credit([good.key], success=True)
        lib.credit([bad.key], success=False)
    assert lib.prune() == [bad.key]  # tried 3 times, usefulness 0.2
    assert [e["op"] for e in store.history(lib.namespace, bad.key)][-1] == "evict"
    # TTL scales with usefulness: the good lesson (0.8) lives 96 min, the idle one (0.5) 60 min.
    clock.advance(61 * 60)
    assert {le.tool for le in lib.lessons()} == {"a"}
    clock.advance(40 * 60)
    assert lib.lessons() == []
    # Recall refreshes a lesson's TTL: recalled lessons stay.
    lib.add(good)
    for _ in range(3):
        clock.advance(50 * 60)
        assert [h.value["tool"] for h in lib.recall("upper-case codes")] == ["a"]
