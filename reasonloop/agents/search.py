"""Search agent: answers multi-hop questions by decomposing them into several searches.

    agent = build_search_agent(policy, "wiki-index", max_queries=6)    # a local BM25 index
    agent = build_search_agent(policy, search_tool(backend=...))       # any search tool
    traj = await AgentRuntime(agent).run("Where was the designer of X born?", task_id="q1")

A ReAct graph (:func:`~reasonloop.agents.react.build_react_agent`) with a search tool and a
prompt that asks the model to split the question into single-fact lookups, each query
built on what the previous one found. Every query and its numbered results are recorded
as a :class:`ToolStep` (the structured hits are in ``result.data["hits"]``). The query
budget is per episode (forks copy what is left): a query past ``max_queries`` is refused
with a message asking for the answer, so the model can still answer from what it read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonloop.agents.react import Agent, build_react_agent
from reasonloop.errors import ConfigError
from reasonloop.policy.base import Policy
from reasonloop.tools.base import Tool, ToolContext, Toolset
from reasonloop.trajectory.schema import ToolResult, ToolStatus

__all__ = ["SEARCH_PROMPT", "QueryBudget", "budgeted", "build_search_agent", "search_agent_from_toolset"]

SEARCH_PROMPT = (
    "Answer the question using the {tool} tool. Questions often need several facts: first split the"
    " question into single-fact lookups, then search for one fact at a time, using what each search"
    " found to write the next query (short, specific keywords). You have at most {max_queries}"
    " searches. Base the answer only on the results, and give it, as short as possible, inside"
    " <answer></answer> tags."
)


@dataclass(kw_only=True)
class _Used:
    count: int = 0


class QueryBudget:
    """Per-episode count of searches (a :class:`~reasonloop.tools.base.SessionFactory`)."""

    def __init__(self, max_queries: int) -> None:
        if max_queries < 1:
            raise ConfigError(f"max_queries must be >= 1, got {max_queries}")
        self.max_queries = max_queries

    def open(self) -> _Used:
        return _Used()

    def fork(self, session: _Used) -> _Used:
        return _Used(count=session.count)

    def close(self, session: _Used) -> None:
        return None


def budgeted(search: Tool, max_queries: int) -> Tool:
    """``search`` with a per-episode limit of ``max_queries`` calls (later ones are refused)."""
    if search.sessions is not None:
        raise ConfigError(f"tool {search.name!r} keeps per-episode state; it cannot be wrapped in a query budget")
    budget = QueryBudget(max_queries)

    async def limited(ctx: ToolContext, **arguments: Any) -> ToolResult:
        used: _Used = ctx.session
        if used.count >= budget.max_queries:
            return ToolResult(status=ToolStatus.REFUSED, error=(
                f"no searches left (max_queries={budget.max_queries}): answer from the results you have"))  # fmt: skip
        used.count += 1
        return await search(arguments)

    return Tool(name=search.name, description=search.description, fn=limited, args_model=search.args_model,
                context_param="ctx", timeout_s=search.timeout_s, max_output_chars=search.max_output_chars,
                sessions=budget)  # fmt: skip


def _search_tool(search: Tool | str | Path | Any) -> Tool:
    if isinstance(search, Tool):
        return search
    from reasonloop.tools.search import search_tool

    if isinstance(search, str | Path):
        return search_tool(index_dir=search)
    if hasattr(search, "search"):
        return search_tool(backend=search)
    raise ConfigError(f"search: expected a Tool, an index directory or a SearchBackend, got {type(search).__name__}")


def build_search_agent(
    policy: Policy,
    search: Tool | str | Path | Any,
    *,
    max_queries: int = 6,
    tools: Sequence[Tool] = (),
    system_prompt: str | None = None,
    max_steps: int | None = None,
    name: str = "search",
    **options: Any,
) -> Agent:
    """The multi-hop search agent.

    Args:
        policy: Writes the queries and the answer.
        search: The search tool, an index directory (local BM25) or a ``SearchBackend``.
        max_queries: Searches per episode; later ones are refused with a request to answer.
        tools: More tools offered besides search.
        system_prompt: Default :data:`SEARCH_PROMPT`.
        max_steps: Most policy calls (default ``max_queries + 3``: every search, a refused
            one and the answer).
        name: Agent name recorded in trajectories.
        **options: Passed to :func:`~reasonloop.agents.react.build_react_agent`
            (sampling, max_errors, checkpointer...).
    """
    tool = budgeted(_search_tool(search), max_queries)
    steps = max_steps if max_steps is not None else max_queries + 3
    prompt = (
        system_prompt if system_prompt is not None else SEARCH_PROMPT.format(tool=tool.name, max_queries=max_queries)
    )
    options.setdefault("max_tool_calls", 2 * steps * max(1, len(tools) + 1))
    return build_react_agent(policy, [tool, *tools], system_prompt=prompt, max_steps=steps, name=name, **options)


def search_agent_from_toolset(policy: Policy, tools: Toolset | Sequence[Tool] | None = None, **options: Any) -> Agent:
    """:func:`build_search_agent` in the agent registry's shape: the ``search`` tool of
    ``tools`` is the search, the other tools are offered as well."""
    given = [tools[n] for n in tools.names] if isinstance(tools, Toolset) else list(tools or [])
    search = next((t for t in given if t.name == "search"), None)
    if search is None:
        raise ConfigError("the search agent needs a tool named 'search' (e.g. --tools search --index DIR)")
    return build_search_agent(policy, search, tools=[t for t in given if t is not search], **options)
