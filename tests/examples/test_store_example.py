"""examples/store_and_export.py runs and reports what it stored, exported and imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_store_and_export_example(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "store_and_export.py"), "--dir", str(tmp_path), "--samples", "3"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "stored 18 new episodes; storing them again added 0"
    assert lines[1].startswith("run demo-a: 9 episodes, mean reward ")
    assert lines[2].startswith("run demo-b: 9 episodes, mean reward ")
    assert lines[3] == "exported 9 episodes to JSONL and 18 to Parquet"
    assert lines[4] == "imported 9 from JSONL, then 9 new from Parquet"
    assert lines[5] == "round trip lossless: True"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm"))) == [
        "all.parquet", "demo-a.jsonl", "imported.sqlite", "runs.sqlite",
    ]  # fmt: skip
