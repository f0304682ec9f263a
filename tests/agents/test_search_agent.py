"""The search agent: multi-hop questions over a real BM25 index, every query recorded, a query budget."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from reasonloop.agents import AgentRuntime
from reasonloop.agents.react import Agent
from reasonloop.agents.search import build_search_agent, search_agent_from_toolset
from reasonloop.errors import ConfigError
from reasonloop.policy.replay import ReplayPolicy
from reasonloop.tools.search import build_index
from reasonloop.trajectory.schema import PolicyStep, ToolCall, ToolStatus, Trajectory

QUESTION = "In which city was the engineer whose company built the Eiffel Tower born?"
DOCS = [
    ("eiffel-tower", "Eiffel Tower", "The Eiffel Tower in Paris was built by the company of Gustave Eiffel for 1889."),
    ("gustave-eiffel", "Gustave Eiffel", "Gustave Eiffel, the French civil engineer, was born in Dijon in 1832."),
    ("statue", "Statue of Liberty", "The Statue of Liberty has an iron frame designed by Gustave Eiffel."),
    ("dijon", "Dijon", "Dijon is a city in eastern France, known for its mustard."),
    ("paris", "Paris", "Paris is the capital and largest city of France."),
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("search")
    corpus = root / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "title": t, "text": x}) + "\n" for i, t, x in DOCS))
    build_index(corpus, root / "index")
    return root / "index"


def search(query: str, i: int) -> PolicyStep:
    call = ToolCall(id=f"q{i}", name="search", arguments={"query": query, "k": 2})
    return PolicyStep(text=f"Hop {i}.", tool_calls=[call], finish_reason="tool_calls", model="rec")


def answer(text: str) -> PolicyStep:
    return PolicyStep(text=text, finish_reason="stop", model="rec")


def run(index: Path, *turns: PolicyStep, **options: Any) -> tuple[Trajectory, Agent]:
    messages = build_search_agent(ReplayPolicy([]), index, **options).messages(QUESTION)
    agent = build_search_agent(ReplayPolicy([Trajectory(task_id="t0", messages=messages, steps=list(turns))]), index,
                               **options)  # fmt: skip

    async def go() -> Trajectory:
        async with AgentRuntime(agent) as runtime:
            return await runtime.run(QUESTION, task_id="t0")

    return asyncio.run(go()), agent


def test_two_hops_are_two_recorded_queries(index: Path) -> None:
    traj, agent = run(index, search("Eiffel Tower built by company", 1), search("Gustave Eiffel born", 2),
                      answer("Eiffel's company built it; he was born in Dijon. <answer>Dijon</answer>"))  # fmt: skip
    assert traj.status == "finished" and traj.final_answer == "Dijon"
    first, second = traj.tool_steps()
    assert first.call.arguments["query"] == "Eiffel Tower built by company"
    assert first.result.data is not None and first.result.data["hits"][0]["id"] == "eiffel-tower"
    assert second.result.data is not None and second.result.data["hits"][0]["id"] == "gustave-eiffel"
    assert "born in Dijon" in second.result.output and first.result.data["query"] == first.call.arguments["query"]
    assert "split the question" in traj.messages[0]["content"] and "at most 6 searches" in traj.messages[0]["content"]
    assert agent.limits.max_steps == 9 and traj.metrics["tool_calls"] == 2


def test_queries_past_the_budget_are_refused_and_the_model_still_answers(index: Path) -> None:
    traj, _ = run(index, search("Eiffel Tower company", 1), search("Gustave Eiffel birthplace", 2),
                  answer("I only know who built it. <answer>unknown</answer>"), max_queries=1)  # fmt: skip
    assert traj.status == "finished" and traj.final_answer == "unknown"
    ran, refused = traj.tool_steps()
    assert ran.result.ok and refused.result.status is ToolStatus.REFUSED
    assert "no searches left (max_queries=1)" in (refused.result.error or "")


def test_a_model_that_never_answers_is_truncated(index: Path) -> None:
    turns = [search(f"Eiffel {i}", i) for i in range(1, 6)]
    traj, _ = run(index, *turns, max_queries=2, max_steps=4)
    assert traj.status == "truncated" and "max_steps=4" in traj.metadata["stop_reason"]
    statuses = [s.result.status for s in traj.tool_steps()]
    assert statuses == [ToolStatus.OK, ToolStatus.OK, ToolStatus.REFUSED]


def test_registry_shape_builder_needs_a_search_tool(index: Path) -> None:
    from reasonloop.tools.search import search_tool

    agent = search_agent_from_toolset(ReplayPolicy([]), [search_tool(index_dir=index)], max_queries=3)
    assert agent.name == "search" and agent.specs[0].name == "search" and agent.limits.max_steps == 6
    with pytest.raises(ConfigError, match="needs a tool named 'search'"):
        search_agent_from_toolset(ReplayPolicy([]), [])


def test_a_fork_keeps_the_queries_already_used(index: Path) -> None:
    turns = [search("Eiffel Tower company", 1), search("Gustave Eiffel born", 2), answer("<answer>Dijon</answer>")]
    messages = build_search_agent(ReplayPolicy([]), index, max_queries=1).messages(QUESTION)
    recording = Trajectory(task_id="t0", messages=messages, steps=list[Any](turns))
    agent = build_search_agent(ReplayPolicy([recording]), index, max_queries=1)

    async def go() -> tuple[Trajectory, Trajectory]:
        async with AgentRuntime(agent) as runtime:
            ep = await runtime.start(QUESTION, task_id="t0")
            await runtime.advance(ep, until="tools")
            branch = runtime.fork(ep)
            return await runtime.finish(ep), await runtime.finish(branch)

    parent, child = asyncio.run(go())
    for traj in (parent, child):
        assert [s.result.status for s in traj.tool_steps()] == [ToolStatus.OK, ToolStatus.REFUSED]
    assert child.parent_id == parent.id and child.fork_step == 2
