"""examples/tiny_model.py runs the shipped model through the real calculator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_tiny_model_example_runs() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "tiny_model.py"), "--suite", "arith", "--seed", "10000"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True,
    ).stdout
    assert "task (arith)" in out and "calculator" in out
    assert "correct with tools:" in out and "without tools the model answers" in out
