"""The reasonloop.trajectory surface is pinned, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import reasonloop.trajectory as trajectory

EXPECTED = {
    "JSON_COLUMN", "SCHEMA_VERSION", "STORE_VERSION", "EntropyKind", "EpisodeRow", "MemoryStep", "NoteStep",
    "PolicyStep", "Reward", "RunStore", "RunSummary", "Step", "StoreKey", "Synchronous", "ToolCall", "ToolResult",
    "ToolStatus", "ToolStep", "Trajectory", "TrajectoryStatus", "UnreadableRowError", "Usage", "export_jsonl",
    "export_parquet", "import_jsonl", "import_parquet", "new_id", "read_jsonl", "read_parquet",
}  # fmt: skip


def test_exported_members_are_pinned():
    assert set(trajectory.__all__) == EXPECTED
    for name in trajectory.__all__:
        assert getattr(trajectory, name) is not None


def test_import_does_not_load_pyarrow():
    code = "import sys, reasonloop.trajectory; print('pyarrow' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.split() == ["False", "False"]
