"""An experience library makes the second pass better: a measured demonstration.

Task family: three tools, each with a quirk its schema does not reveal and whose
misuse fails with an explanatory error:

* ``days_between(start, end)`` only takes ISO dates (``YYYY-MM-DD``); tasks write
  most dates as ``MM/DD/YYYY``.
* ``convert_currency(amount, source, target)`` only takes upper-case ISO 4217
  codes; tasks mostly write them in lower case.
* ``ship_cost(weight, zone)`` wants the weight in whole grams; tasks give kilograms.

Every episode may call one tool once (``max_tool_calls=1``): an agent that misuses
the tool cannot retry, so only what it knew *before* the episode helps.

The policy (:class:`LessonReadingPolicy`) is scripted but honest: it parses the
task, calls the tool with the arguments as written, and changes them only when a
lesson in its context, about that tool, names the rule (it knows how to reformat
a date, upper-case a code, turn kilograms into grams, not when to). The memory
agent recalls lessons before each episode and reflects after it; the baseline has
no memory. Both run the same 24 tasks twice.

    python examples/memory_lessons.py [STORE_PATH]
"""

from __future__ import annotations

import asyncio
import random
import re
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from reasonloop.agents import AgentRuntime, build_react_agent
from reasonloop.agents.memory import RecallConfig, with_memory
from reasonloop.memory import Lesson, Memory, Scope
from reasonloop.policy.base import Completion, Context, SamplingParams, ToolFormat, ToolSpec
from reasonloop.tools.base import tool
from reasonloop.trajectory.schema import Reward, ToolCall, ToolResult, ToolStatus, Trajectory

__all__ = ["LessonReadingPolicy", "make_tasks", "run_demo"]

RATES = {"USD": 1.0, "EUR": 0.9, "GBP": 0.8, "JPY": 150.0, "CHF": 0.88}


def _err(message: str) -> ToolResult:
    return ToolResult(status=ToolStatus.ERROR, error=message)


@tool
def days_between(start: str, end: str) -> ToolResult:
    """Number of days from one date to another.

    Args:
        start: The first date.
        end: The second date.
    """
    try:
        a, b = (datetime.strptime(s, "%Y-%m-%d").date() for s in (start, end))
    except ValueError:
        bad = next(s for s in (start, end) if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", s))
        return _err(f"invalid date {bad!r}: dates must be ISO 8601, YYYY-MM-DD")
    return ToolResult(status=ToolStatus.OK, output=str((b - a).days))


@tool
def convert_currency(amount: float, source: str, target: str) -> ToolResult:
    """Convert an amount of money between currencies.

    Args:
        amount: How much money.
        source: Currency of the amount.
        target: Currency to convert to.
    """
    for code in (source, target):
        if code not in RATES:
            return _err(f"unknown currency {code!r}: currency codes are upper-case ISO 4217 codes such as USD")
    return ToolResult(status=ToolStatus.OK, output=f"{amount / RATES[source] * RATES[target]:.2f}")


@tool
def ship_cost(weight: str, zone: int) -> ToolResult:
    """Shipping price of a parcel.

    Args:
        weight: Weight of the parcel.
        zone: Destination zone (1-5).
    """
    if not weight.isdigit():
        return _err(f"weight {weight!r} is not understood: give the weight in whole grams, e.g. 1500")
    return ToolResult(status=ToolStatus.OK, output=f"{4.5 + zone * 1.25 + int(weight) * 0.004:.2f}")


TOOLS = [days_between, convert_currency, ship_cost]

# -- the policy ---------------------------------------------------------------------------

_PATTERNS: dict[str, re.Pattern[str]] = {
    "days_between": re.compile(r"How many days are there from (\S+) to (\S+)\?"),
    "convert_currency": re.compile(r"Convert ([\d.]+) (\w+) to (\w+)\."),
    "ship_cost": re.compile(r"shipping a ([\d.]+ kg) parcel to zone (\d)"),
}


def _iso(text: str) -> str:
    try:
        return datetime.strptime(text, "%m/%d/%Y").date().isoformat()
    except ValueError:
        return text


def _grams(text: str) -> str:
    m = re.fullmatch(r"([\d.]+) kg", text)
    return str(round(float(m.group(1)) * 1000)) if m else text


# What the policy can do to arguments, and the words that tell it to (in a lesson about that tool).
_FIXES: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "days_between": ("YYYY-MM-DD", lambda a: {k: _iso(v) for k, v in a.items()}),
    "convert_currency": ("upper-case", lambda a: {**a, "source": a["source"].upper(), "target": a["target"].upper()}),
    "ship_cost": ("whole grams", lambda a: {**a, "weight": _grams(a["weight"])}),
}


def _naive_call(task: str) -> tuple[str, dict[str, Any]] | None:
    for name, pattern in _PATTERNS.items():
        m = pattern.search(task)
        if m is None:
            continue
        if name == "days_between":
            return name, {"start": m.group(1), "end": m.group(2)}
        if name == "convert_currency":
            return name, {"amount": float(m.group(1)), "source": m.group(2), "target": m.group(3)}
        return name, {"weight": m.group(1), "zone": int(m.group(2))}
    return None


class LessonReadingPolicy:
    """Parses the task, calls its tool, and fixes the arguments as recalled lessons say."""

    @property
    def name(self) -> str:
        return "scripted/lesson-reader"

    @property
    def tool_format(self) -> ToolFormat:
        return "openai"

    def start(self, messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]) -> list[int] | None:
        return None

    def extend(self, context: Context, new_messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]) -> list[int] | None:
        return None

    async def generate(self, context: Context, tools: Sequence[ToolSpec], sampling: SamplingParams) -> Completion:
        last = context.messages[-1]
        if last.get("role") == "tool":
            content = str(last.get("content", ""))
            if content.startswith("["):  # an error observation: the one allowed call is spent
                return Completion(text="<answer>unknown</answer>", finish_reason="stop", model=self.name)
            return Completion(text=f"<answer>{content}</answer>", finish_reason="stop", model=self.name)
        task = next(str(m["content"]) for m in context.messages if m.get("role") == "user")
        call = _naive_call(task)
        if call is None:
            return Completion(text="<answer>unknown</answer>", finish_reason="stop", model=self.name)
        name, args = call
        memory_text = "\n".join(str(m.get("content", "")) for m in context.messages if m.get("content") != task)
        hint, fix = _FIXES[name]
        if any(name in line and hint in line for line in memory_text.splitlines()):
            args = fix(args)
        return Completion(text="", tool_calls=[ToolCall(name=name, arguments=args)], finish_reason="tool_calls",
                          model=self.name)


# -- tasks, scoring, distractors ---------------------------------------------------------------


def make_tasks(n_per_tool: int = 8, seed: int = 0) -> list[dict[str, Any]]:
    """Tasks with their expected answers (computed with the tools used correctly)."""
    rng = random.Random(seed)
    tasks = []
    for i in range(n_per_tool):
        d1 = date(2024, 1, 1) + timedelta(days=rng.randrange(300))
        d2 = d1 + timedelta(days=rng.randrange(1, 60))
        us = rng.random() < 0.75
        fmt = (lambda d: d.strftime("%m/%d/%Y")) if us else (lambda d: d.isoformat())
        tasks.append({"task_id": f"dates-{i}", "prompt": f"How many days are there from {fmt(d1)} to {fmt(d2)}?",
                      "expected": str((d2 - d1).days)})
        src, dst = rng.sample(sorted(RATES), 2)
        amount = rng.randrange(10, 500)
        codes = (src.lower(), dst.lower()) if rng.random() < 0.75 else (src, dst)
        tasks.append({"task_id": f"money-{i}", "prompt": f"Convert {amount} {codes[0]} to {codes[1]}.",
                      "expected": f"{amount / RATES[src] * RATES[dst]:.2f}"})
        kg, zone = rng.randrange(1, 40) / 4, rng.randrange(1, 6)
        tasks.append({"task_id": f"ship-{i}", "prompt": f"What does shipping a {kg} kg parcel to zone {zone} cost?",
                      "expected": f"{4.5 + zone * 1.25 + round(kg * 1000) * 0.004:.2f}"})
    return tasks


def distractors(n: int, seed: int = 1) -> list[Lesson]:
    """Lessons about other tools: recall has to find the right one among them."""
    rng = random.Random(seed)
    tools = ["http_get", "sql_query", "send_email", "resize_image", "geocode", "translate"]
    errors = ["timeout after 30 s: retry with a smaller page size", "permission denied for table {t}",
              "recipient address {t} is invalid", "width must be a multiple of 8, got {t}",
              "address {t} not found: add the country", "language code {t} unknown: use ISO 639-1"]
    out = []
    for i in range(n):
        k = rng.randrange(len(tools))
        err = errors[k].format(t=f"'x{i}'")
        out.append(Lesson(kind="failure", tool=tools[k], error=err, task=f"a task that needs {tools[k]} #{i}",
                          text=f"Calling {tools[k]} with {{\"arg\": {i}}} failed: {err}", provenance=[f"seed-{i}"]))
    return out


def score(expected: Mapping[str, str]) -> Callable[[Trajectory], list[Reward]]:
    def scorer(traj: Trajectory) -> list[Reward]:
        ok = traj.final_answer is not None and traj.final_answer.strip() == expected[traj.task_id]
        return [Reward(name="correct", value=1.0 if ok else 0.0, source="exact match")]

    return scorer


def tool_worked(state: Mapping[str, Any]) -> bool | None:
    """Success as the agent can tell it: it finished and its tool call succeeded."""
    tools = [s for s in state["steps"] if s["kind"] == "tool"]
    return state.get("status") == "finished" and bool(tools) and tools[-1]["result"]["status"] == "ok"


async def _pass(runtime: AgentRuntime, tasks: list[dict[str, Any]], run: int) -> int:
    wins = 0
    for t in tasks:  # one at a time: a lesson learnt on one task can help the next
        traj = await runtime.run(t["prompt"], task_id=t["task_id"], sample=run)
        wins += int(traj.reward > 0)
    return wins


async def run_demo(store_path: str | Path, *, n_per_tool: int = 8, n_distractors: int = 60) -> dict[str, Any]:
    """Both arms, two passes each; returns the numbers."""
    tasks = make_tasks(n_per_tool)
    expected = {t["task_id"]: t["expected"] for t in tasks}
    base = build_react_agent(LessonReadingPolicy(), TOOLS, max_steps=3, max_tool_calls=1, name="tools-once")
    results: dict[str, Any] = {"tasks": len(tasks)}
    plain = AgentRuntime(base, scorer=score(expected))
    results["no_memory"] = [await _pass(plain, tasks, run) for run in (0, 1)]
    with Memory.open(store_path, scope=Scope(user="demo", agent="tools-once", family="quirky-tools")) as memory:
        for lesson in distractors(n_distractors):
            memory.lessons.add(lesson, actor="seed")
        agent = with_memory(base, memory, recall=RecallConfig(kinds=("lessons",), limit=3), outcome=tool_worked,
                            offer_tools=False)
        runtime = AgentRuntime(agent, scorer=score(expected))
        results["experience"] = [await _pass(runtime, tasks, run) for run in (0, 1)]
        learnt = [lesson for lesson in memory.lessons.lessons() if not lesson.provenance[0].startswith("seed")]
        results["lessons"] = sorted(
            ((lesson.tool, round(lesson.usefulness, 2), lesson.successes, lesson.failures) for lesson in learnt
             if lesson.kind == "failure"), key=lambda x: x[0])
        results["history"] = len(memory.store.history(limit=100_000))
    return results


def main(argv: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = argv[1] if len(argv) > 1 else str(Path(tmp) / "memory.db")
        r = asyncio.run(run_demo(path))
    n = r["tasks"]
    print(f"{'arm':<22}{'pass 1':>8}{'pass 2':>8}")
    print(f"{'no memory':<22}{r['no_memory'][0]:>5}/{n}{r['no_memory'][1]:>5}/{n}")
    print(f"{'experience library':<22}{r['experience'][0]:>5}/{n}{r['experience'][1]:>5}/{n}")
    for tool_name, use, wins, losses in r["lessons"]:
        print(f"lesson about {tool_name}: usefulness {use:.2f} ({wins} successes, {losses} failures after recall)")
    print(f"audit history entries: {r['history']}")


if __name__ == "__main__":
    main(sys.argv)
