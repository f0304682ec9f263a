"""Memory in agent graphs: recall/reflect nodes, memory tools, memory steps, fork isolation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reasonloop.agents import AgentRuntime, build_react_agent
from reasonloop.agents.memory import RECALL_NODE, REFLECT_NODE, RecallConfig, with_memory
from reasonloop.memory import Lesson, Memory, Scope
from reasonloop.policy.base import Completion, Context, SamplingParams, ToolFormat, ToolSpec
from reasonloop.tools.base import tool
from reasonloop.trajectory.schema import MemoryStep, ToolCall, Trajectory


def _ids(messages: Sequence[dict[str, Any]]) -> list[int]:
    return [b for m in messages for b in str(m.get("content", "")).encode()]


class MarkerPolicy:
    """Writes a shared fact, then a fact marked with its sampling seed, searches facts, answers.

    Token ids are the UTF-8 bytes of what it reads and writes, so forced ids of
    memory inserts can be checked exactly.
    """

    @property
    def name(self) -> str:
        return "scripted/marker"

    @property
    def tool_format(self) -> ToolFormat:
        return "openai"

    def start(self, messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]) -> list[int] | None:
        return _ids(messages)

    def extend(self, context: Context, new_messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]) -> list[int] | None:
        return _ids(new_messages)

    async def generate(self, context: Context, tools: Sequence[ToolSpec], sampling: SamplingParams) -> Completion:
        turn = sum(1 for m in context.messages if m["role"] == "assistant")
        plan = [
            ("memory_write", {"text": "shared: the vault code is 1234", "kind": "fact"}),
            ("memory_write", {"text": f"marker {sampling.seed}", "kind": "fact"}),
            ("memory_search", {"query": "marker vault", "kind": "facts", "limit": 10}),
        ]
        if turn < len(plan):
            name, args = plan[turn]
            return Completion(tool_calls=[ToolCall(name=name, arguments=args)], finish_reason="tool_calls",
                              token_ids=[turn], model=self.name)
        text = f"<answer>{context.messages[-1]['content']}</answer>"
        return Completion(text=text, finish_reason="stop", token_ids=list(text.encode()), model=self.name)


@tool
def noop() -> str:
    """Do nothing."""
    return "ok"


def _memory_steps(traj: Trajectory) -> list[MemoryStep]:
    return [s for s in traj.steps if isinstance(s, MemoryStep)]


def test_memory_agent_records_memory_steps(tmp_path: Path) -> None:
    with Memory.open(tmp_path / "m.db", scope=Scope(user="u", family="vault")) as memory:
        seeded = Lesson(kind="failure", tool="memory_search", text="memory_search: search facts for the vault code",
                        error="none", provenance=["seed"])
        memory.lessons.add(seeded)
        agent = with_memory(build_react_agent(MarkerPolicy(), [noop], max_steps=6), memory,
                            recall=RecallConfig(kinds=("lessons", "facts")), outcome=lambda s: s["status"] == "finished")
        assert set(agent.toolset.names) == {"noop", "memory_search", "memory_write"}
        traj = asyncio.run(AgentRuntime(agent).run("What is the vault code?", task_id="vault"))
        assert traj.status == "finished" and "the vault code is 1234" in (traj.final_answer or "")
        steps = _memory_steps(traj)
        recall = [s for s in steps if s.node == RECALL_NODE]
        assert [s.namespace[0] for s in recall] == ["lessons", "facts"]
        assert recall[0].items[0]["key"] == seeded.key and recall[1].items == []
        # The recall message's forced ids sit on the last recall step, and nowhere else.
        shown = traj.steps[len(recall) - 1]
        assert shown.token_ids and bytes(shown.token_ids).decode().startswith("Lessons from earlier episodes:")
        assert traj.token_ids()[: len(traj.prompt_token_ids)] == traj.prompt_token_ids
        ops = [(s.node, s.op) for s in steps if s.node == "tools"]
        assert ops == [("tools", "write"), ("tools", "write"), ("tools", "search")]
        reflect = [s for s in steps if s.node == REFLECT_NODE]
        assert len(reflect) == 1 and reflect[-1] is traj.steps[-1]
        assert {"change": "credited", "key": recall[0].items[0]["key"], "success": True} in reflect[0].items
        # After the episode: its facts were committed, the lesson credited, the episode summarised.
        assert {h.text for h in memory.facts.recall("vault marker", limit=5)} >= {"shared: the vault code is 1234"}
        credited = memory.store.get(memory.namespace("lessons"), seeded.key)
        assert credited is not None and credited.value["successes"] == 1
        assert {le.kind for le in memory.lessons.lessons()} == {"failure", "success"}  # what worked was kept
        assert memory.episodes.recall("vault code")[0].key == traj.id
        actors = {e["actor"] for e in memory.store.history(memory.namespace("facts"))}
        assert actors == {traj.id}


def test_forked_branches_do_not_see_each_other(tmp_path: Path) -> None:
    async def scenario(memory: Memory) -> tuple[Trajectory, Trajectory]:
        agent = with_memory(build_react_agent(MarkerPolicy(), [], max_steps=6), memory, reflect=False)
        runtime = AgentRuntime(agent)
        ep = await runtime.start("What is the vault code?", task_id="vault", seed=1)
        await runtime.advance(ep, until="tools")  # the shared fact is written
        branch = runtime.fork(ep)
        parent = await runtime.finish(ep)
        child = await runtime.finish(branch)
        return parent, child

    with Memory.open(tmp_path / "m.db") as memory:
        parent, child = asyncio.run(scenario(memory))
        assert child.parent_id == parent.id
        p_marker, c_marker = (_written_marker(t) for t in (parent, child))
        assert p_marker != c_marker
        for traj, own, other in ((parent, p_marker, c_marker), (child, c_marker, p_marker)):
            found = json.dumps(_memory_steps(traj)[-1].items)
            assert own in found and other not in found and "vault code is 1234" in found
        # Both branches committed when they ended; the store has all three facts once.
        texts = sorted(h.text for h in memory.facts.recall("marker vault", limit=10))
        assert texts == sorted(["shared: the vault code is 1234", p_marker, c_marker])


def _written_marker(traj: Trajectory) -> str:
    writes = [s for s in _memory_steps(traj) if s.op == "write"]
    return str(writes[-1].items[0]["value"]["text"])
