"""Search agent on a two-hop question over a small local BM25 index.

    python examples/agent_search.py

The index is built from a five-document corpus written to a temporary directory; the
policy replays a recorded episode (two queries, the second built on the first one's
result, then the answer), so the example runs offline. Every query runs for real.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from reasonloop.agents import AgentRuntime
from reasonloop.agents.search import build_search_agent
from reasonloop.policy.replay import ReplayPolicy
from reasonloop.tools.search import build_index
from reasonloop.trajectory.schema import PolicyStep, ToolCall, Trajectory

__all__ = ["main"]

QUESTION = "In which city was the engineer whose company built the Eiffel Tower born?"
CORPUS = [
    {
        "id": "eiffel-tower",
        "title": "Eiffel Tower",
        "text": "The Eiffel Tower was built by the company of Gustave Eiffel.",
    },
    {
        "id": "gustave-eiffel",
        "title": "Gustave Eiffel",
        "text": "Gustave Eiffel, a French engineer, was born in Dijon.",
    },
    {
        "id": "statue",
        "title": "Statue of Liberty",
        "text": "The Statue of Liberty has an iron frame by Gustave Eiffel.",
    },
    {"id": "dijon", "title": "Dijon", "text": "Dijon is a city in eastern France, known for its mustard."},
    {"id": "paris", "title": "Paris", "text": "Paris is the capital and largest city of France."},
]


def recorded_turns() -> list[PolicyStep]:
    def query(i: int, text: str, q: str) -> PolicyStep:
        call = ToolCall(id=f"q{i}", name="search", arguments={"query": q, "k": 2})
        return PolicyStep(text=text, tool_calls=[call], finish_reason="tool_calls", model="recorded-model")

    return [
        query(1, "Hop 1: who built the tower?", "Eiffel Tower built by company"),
        query(2, "Gustave Eiffel's company built it. Hop 2: where was he born?", "Gustave Eiffel born"),
        PolicyStep(text="He was born in Dijon. <answer>Dijon</answer>", finish_reason="stop", model="recorded-model"),
    ]


async def main() -> Trajectory:
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        corpus.write_text("".join(json.dumps(doc) + "\n" for doc in CORPUS))
        build_index(corpus, Path(tmp) / "index")
        messages = build_search_agent(ReplayPolicy([]), Path(tmp) / "index", max_queries=4).messages(QUESTION)
        policy = ReplayPolicy([Trajectory(messages=messages, steps=list[Any](recorded_turns()))])
        agent = build_search_agent(policy, Path(tmp) / "index", max_queries=4)
        async with AgentRuntime(agent, run_id="example") as runtime:
            traj = await runtime.run(QUESTION, task_id="eiffel")
    print(f"task {traj.task_id}: {traj.status}, answer {traj.final_answer!r}")
    for step in traj.tool_steps():
        hits = [hit["id"] for hit in (step.result.data or {}).get("hits", [])]
        print(f"  query {step.call.arguments['query']!r} -> {', '.join(hits)}")
    return traj


if __name__ == "__main__":
    asyncio.run(main())
