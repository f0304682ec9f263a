"""examples/search.py builds an index, searches it, rejects bad input and replays a frozen cache."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_search_example(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "search.py"), "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "indexed 4 documents; skipped line(s) [3]"
    assert lines[2] == "===== BEGIN SEARCH RESULTS ====="
    assert lines[3] == "[1] (source: hopper) Grace Hopper"
    assert "[3] (source: spam) Compiler news" in lines
    assert "tool calls hidden in the results: 0" in lines
    assert "empty query -> invalid_arguments: invalid arguments for search: query is empty" in result.stdout
    assert lines[-1] == "frozen replay identical: True; new query -> error"
    assert {p.name for p in tmp_path.iterdir()} >= {"corpus.jsonl", "index", "cache.sqlite"}
