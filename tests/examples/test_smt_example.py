"""examples/smt.py runs and prints each verdict it demonstrates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_smt_example() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "smt.py")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "schedule: sat, ada=2 bob=3 cy=1"
    assert lines[1] == "with bob opening: unsat, core: all-different bob-opens cy-opens"
    assert lines[2] == "z3py: sat, ada=2 bob=3"
    assert lines[3].startswith("garbage: error (input): line 1 column 0: expected a command")
    assert lines[4] == "reward: 1.0 (expected sat, z3 said sat)"
    assert lines[5] == "tool: [error] z3 error: line 2 column 13: unknown constant y"
