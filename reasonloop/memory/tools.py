"""Memory tools the model can call: ``memory_search`` and ``memory_write``.

Both run on the episode's :class:`~reasonloop.memory.view.MemoryView` (the
:class:`~reasonloop.memory.view.MemorySessions` factory gives one per episode and
forks it with the episode), so what a branch writes is invisible to its sibling.
Each result carries ``data["memory"]``: the operation as a
:class:`~reasonloop.trajectory.schema.MemoryStep` would record it (the memory
graph turns it into one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from reasonloop.memory.kinds import fact_key, note_key
from reasonloop.memory.view import WORKING_KIND, MemoryView
from reasonloop.tools.base import Tool, ToolContext, tool
from reasonloop.trajectory.schema import ToolResult, ToolStatus

if TYPE_CHECKING:
    from reasonloop.memory.memory import Memory

__all__ = ["MEMORY_TOOL_NAMES", "memory_tools"]

MEMORY_TOOL_NAMES = ("memory_search", "memory_write")

SearchKind = Literal["all", "notes", "facts", "lessons", "episodes"]
WriteKind = Literal["note", "fact"]


def _view(ctx: ToolContext) -> MemoryView | ToolResult:
    view = ctx.session
    if not isinstance(view, MemoryView) or view.closed:
        return ToolResult(status=ToolStatus.ERROR, error="memory is not available in this episode")
    if ctx.episode_id:
        view.episode_id = ctx.episode_id
    return view


def _render(hits: list[dict[str, Any]]) -> str:
    if not hits:
        return "No memories match."
    lines = []
    for i, h in enumerate(hits, 1):
        kind = h["namespace"][0] if h["namespace"] else "?"
        lines.append(f"{i}. [{kind}] {h['value'].get('text', '')} (score {h['scores']['total']:.2f})")
    return "\n".join(lines)


def memory_tools(memory: Memory) -> list[Tool]:
    """The two memory tools of ``memory``'s scope."""
    scope = memory.scope
    kinds = ("notes", "facts", "lessons", "episodes")

    @tool(name="memory_search", sessions=memory.sessions, timeout_s=30.0)
    def memory_search(
        query: Annotated[str, Field(min_length=1, max_length=2000)],
        ctx: ToolContext,
        kind: SearchKind = "all",
        limit: Annotated[int, Field(ge=1, le=20)] = 5,
    ) -> ToolResult:
        """Search long-term memory (facts, lessons from past episodes, episode summaries, your notes).

        Args:
            query: What to look for, in words.
            kind: Which memories: all, notes, facts, lessons or episodes.
            limit: How many results (1-20).
        """
        view = _view(ctx)
        if isinstance(view, ToolResult):
            return view
        wanted = kinds if kind == "all" else (kind,)
        hits = [h for k in wanted for h in view.search(scope.namespace(k), query, limit=limit)]
        hits.sort(key=lambda h: -h.scores.total)
        items = [h.as_dict() for h in hits[:limit]]
        ns = list(scope.namespace(kind)) if kind != "all" else [scope.user, scope.agent, scope.family]
        op = {"op": "search", "namespace": ns, "query": query, "items": items}
        return ToolResult(status=ToolStatus.OK, output=_render(items), data={"memory": op})

    @tool(name="memory_write", sessions=memory.sessions, timeout_s=30.0)
    def memory_write(
        text: Annotated[str, Field(min_length=1, max_length=4000)],
        ctx: ToolContext,
        kind: WriteKind = "note",
    ) -> ToolResult:
        """Write to memory: a working note for this episode, or a fact worth keeping for later episodes.

        Args:
            text: The note or fact, self-contained.
            kind: note (this episode only) or fact (kept after the episode).
        """
        view = _view(ctx)
        if isinstance(view, ToolResult):
            return view
        text = text.strip()
        if not text:
            return ToolResult(status=ToolStatus.INVALID_ARGUMENTS, error="text is empty")
        ns = scope.namespace(WORKING_KIND if kind == "note" else "facts")
        key = note_key(text) if kind == "note" else fact_key(text)
        value = {"kind": kind, "text": text, "episode": view.episode_id}
        view.put(ns, key, value)
        op = {"op": "write", "namespace": list(ns), "key": key, "items": [{"key": key, "value": value}]}
        where = "for this episode" if kind == "note" else "(kept after this episode)"
        return ToolResult(status=ToolStatus.OK, output=f"Saved {kind} {where}.", data={"memory": op})

    return [memory_search, memory_write]
