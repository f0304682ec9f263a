"""examples/planning.py runs and prints a valid plan and an explained failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_planning_example_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "planning.py"), "--blocks", "5", "--seed", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "There are 5 blocks" in out
    assert '"status": "solved_satisficing"' in out
    assert "the plan in words reads back as valid" in out
    assert "without its first step: invalid_plan: step " in out or "goals are false" in out
