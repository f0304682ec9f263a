"""examples/python_tool.py runs and prints each behaviour it demonstrates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reasonloop.tools.sandbox import Sandbox, SandboxConfig

REPO = Path(__file__).resolve().parents[2]


def test_python_tool_example() -> None:
    reason = Sandbox(SandboxConfig()).unavailable_reason()
    if reason is not None:
        pytest.skip(f"sandbox unavailable: {reason}")
    result = subprocess.run([sys.executable, str(REPO / "examples" / "python_tool.py")], capture_output=True,
                            text=True, cwd=REPO, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "roots: [2, 3]",
        "fork: [20, 30] original: [2, 3]",
        "error: ZeroDivisionError: division by zero",
        "loop: timeout state lost: True",
        "tool: 45 | Out: np.float64(4.5)",
    ]
