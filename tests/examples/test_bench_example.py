"""examples/bench_suites.py runs every suite's expert at 100%, resumes, and compares two runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SUITES = ["arith", "arith-chain", "arith-py", "logic", "lookup", "planning"]


@pytest.mark.slow
def test_bench_example(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "bench_suites.py"), "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    for name, line in zip(SUITES, lines, strict=False):
        assert line.startswith(f"{name} ") and "pass@1=1.00 episodes=4" in line, line
    assert "lookup       pass@1=1.00 episodes=4 tool calls: search: 4" in lines
    assert "resumed logic: 0 new episodes, pass@1=1.00" in lines
    assert any("| 0.500 [" in line and "-0.500 [" in line for line in lines)
    assert lines[-3].endswith("2 of 4 shared tasks differ")
    for name in SUITES:
        assert (tmp_path / name / "report.json").is_file() and (tmp_path / name / "runs.sqlite").is_file()
