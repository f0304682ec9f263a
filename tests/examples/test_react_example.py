"""examples/react_agent.py runs and prints the episode it recorded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "react_agent.py"


def test_react_example_runs() -> None:
    done = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120, check=False,
                          cwd=EXAMPLE.parents[1])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "task eggs: finished, 5 steps, answer '126'"
    assert "multiply = 42.0 (ok)" in lines[2] and "multiply = 126.0 (ok)" in lines[4]
