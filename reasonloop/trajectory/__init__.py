"""The shared data model: trajectories, the run store, and their file formats.

Importing this package loads pydantic and sqlite3 only; pyarrow is imported by the
Parquet functions when they are called.
"""

from __future__ import annotations

from reasonloop.trajectory.export import (
    JSON_COLUMN,
    export_jsonl,
    export_parquet,
    import_jsonl,
    import_parquet,
    read_jsonl,
    read_parquet,
)
from reasonloop.trajectory.schema import (
    SCHEMA_VERSION,
    EntropyKind,
    MemoryStep,
    NoteStep,
    PolicyStep,
    Reward,
    Step,
    ToolCall,
    ToolResult,
    ToolStatus,
    ToolStep,
    Trajectory,
    TrajectoryStatus,
    Usage,
    new_id,
)
from reasonloop.trajectory.store import (
    STORE_VERSION,
    EpisodeRow,
    RunStore,
    RunSummary,
    StoreKey,
    Synchronous,
    UnreadableRowError,
)

__all__ = [
    "JSON_COLUMN",
    "SCHEMA_VERSION",
    "STORE_VERSION",
    "EntropyKind",
    "EpisodeRow",
    "MemoryStep",
    "NoteStep",
    "PolicyStep",
    "Reward",
    "RunStore",
    "RunSummary",
    "Step",
    "StoreKey",
    "Synchronous",
    "ToolCall",
    "ToolResult",
    "ToolStatus",
    "ToolStep",
    "Trajectory",
    "TrajectoryStatus",
    "UnreadableRowError",
    "Usage",
    "export_jsonl",
    "export_parquet",
    "import_jsonl",
    "import_parquet",
    "new_id",
    "read_jsonl",
    "read_parquet",
]
