"""examples/hf_policy.py runs and prints aligned ids, log-probs and entropies."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_hf_policy_example_runs() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "hf_policy.py"), "--max-tokens", "5", "--seed", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert "template=chatml-json" in out
    rows = re.findall(r"id=\s*(\d+)\s+logprob=\s*(-?[\d.]+)\s+entropy=\s*([\d.]+)", out)
    assert len(rows) == 10  # two turns of 5 tokens
    assert all(float(lp) <= 0 and float(ent) >= 0 for _, lp, ent in rows)
    assert "extend:" in out and "<|im_start|>user" in out and out.count("finish_reason=length") == 2
