"""Where an agent runtime keeps its LangGraph checkpoints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from reasonloop.errors import ConfigError

__all__ = ["Checkpointing", "OpenedCheckpointer", "open_checkpointer"]

Checkpointing = BaseCheckpointSaver[Any] | str | Path | bool | None
"""``None``/``True``: in memory (or the agent's own saver); a path: durable SQLite;
a saver: that one; ``False``: no checkpoints (whole episodes only, no forks)."""


@dataclass(frozen=True, kw_only=True)
class OpenedCheckpointer:
    """A ready checkpointer and what its owner must clean up."""

    saver: BaseCheckpointSaver[Any] | None
    """The saver, or ``None`` when checkpoints are off."""
    owned_memory: bool = False
    """True for an in-memory saver made here: finished threads may be deleted."""
    connection: Any = None
    """The ``aiosqlite`` connection to close, for a SQLite path."""


async def open_checkpointer(spec: Checkpointing, default: Any = None) -> OpenedCheckpointer:
    """Open the checkpointer ``spec`` names (in the running event loop).

    Args:
        spec: See :data:`Checkpointing`.
        default: The agent graph's own checkpointer, used when ``spec`` is ``None``/``True``.
    """
    if spec is False:
        return OpenedCheckpointer(saver=None)
    if spec is None or spec is True:
        if isinstance(default, BaseCheckpointSaver):
            return OpenedCheckpointer(saver=default)
        return OpenedCheckpointer(saver=InMemorySaver(), owned_memory=True)
    if isinstance(spec, str | Path):
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        path = Path(spec).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(str(path))
        saver = AsyncSqliteSaver(conn)
        await saver.setup()
        return OpenedCheckpointer(saver=saver, connection=conn)
    if isinstance(spec, BaseCheckpointSaver):
        return OpenedCheckpointer(saver=spec)
    raise ConfigError(f"checkpointer: expected a path, a checkpoint saver, True/False or None, got {spec!r}")
