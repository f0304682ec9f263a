"""The Lean checker: response classification always; real checks where a toolchain exists."""

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from reasonloop.tools.lean import LeanChecker, LeanConfig, classify_response, lean_tool, lean_unavailable
from reasonloop.trajectory.schema import ToolStatus


def test_proved_incomplete_and_error_responses():
    ok = classify_response({"env": 1, "messages": []})
    assert ok.verdict == "proved" and ok.goals == []
    partial = classify_response({
        "env": 2,
        "sorries": [{"pos": {"line": 1, "column": 30}, "goal": "⊢ 1 + 1 = 2", "proofState": 0}],
        "messages": [{"severity": "warning", "pos": {"line": 1, "column": 8}, "data": "declaration uses 'sorry'"}],
    })
    assert partial.verdict == "incomplete" and partial.goals == ["⊢ 1 + 1 = 2"]
    failed = classify_response({
        "env": 3,
        "messages": [{
            "severity": "error", "pos": {"line": 2, "column": 2}, "endPos": {"line": 2, "column": 7},
            "data": "unsolved goals\nn : Nat\n⊢ n + 0 = n",
        }],
    })
    assert failed.verdict == "error" and failed.goals == ["n : Nat\n⊢ n + 0 = n"]
    text = failed.to_text()
    assert "error at line 2, column 2" in text and "open goal:\nn : Nat" in text
    assert classify_response({"message": "Unknown environment."}).verdict == "error"


def test_unavailable_toolchain_is_refused_with_instructions(tmp_path: Path):
    config = LeanConfig(repl_path=tmp_path / "no-repl", lake_path="definitely-not-lake")
    reason = lean_unavailable(config)
    assert reason is not None and ("lean-interact" in reason or "PATH" in reason)
    result = asyncio.run(lean_tool(config)({"code": "theorem t : 1 + 1 = 2 := rfl"}))
    assert result.status is ToolStatus.REFUSED and result.error == reason
    assert LeanChecker(config).check("").verdict == "error"


def test_config_checks():
    with pytest.raises(ValueError, match="timeout_s"):
        LeanConfig(timeout_s=0)
    with pytest.raises(ValueError, match="memory_mb"):
        LeanConfig(memory_mb=10)


@pytest.mark.lean
@pytest.mark.skipif(
    shutil.which("lake") is None or not os.environ.get("REASONLOOP_LEAN_REPL"),
    reason="needs a Lean toolchain (lake on PATH) and a built REPL in REASONLOOP_LEAN_REPL",
)
def test_real_lean_checks():
    checker = LeanChecker()
    try:
        assert checker.check("theorem two : 1 + 1 = 2 := rfl").verdict == "proved"
        open_goal = checker.check("theorem t (n : Nat) : n + 0 = n := by\n  sorry")
        assert open_goal.verdict == "incomplete" and "n + 0 = n" in open_goal.goals[0]
        wrong = checker.check("theorem w : 1 + 1 = 3 := rfl")
        assert wrong.verdict == "error" and wrong.messages[0].line == 1
    finally:
        checker.close()
