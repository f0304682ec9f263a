"""examples/train_arpo.py trains, checkpoints, draws its curves and resumes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> str:
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_arpo.py"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True,
    ).stdout


def test_train_example_runs_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = _run("--out", str(out), "--steps", "2", "--sft-steps", "3")
    assert "step=2" in first and (out / "curves.png").stat().st_size > 0
    assert (out / "checkpoints" / "step-00000002" / "COMPLETE").is_file()
    again = _run("--out", str(out), "--steps", "3", "--resume")
    assert "step=3" in again and again.count("\n   3 ") == 1
