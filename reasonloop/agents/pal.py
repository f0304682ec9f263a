"""Program-aided agent (PAL) with self-debugging: the answer is what the model's program computes.

    agent = build_pal_agent(policy, max_repairs=2)
    traj = await AgentRuntime(agent).run("A farmer has 17 sheep ...", task_id="q1")

The model writes a program (a ```python block, or a call of the ``python`` tool); the
sandboxed interpreter (:mod:`reasonloop.tools.python`) runs it in the episode's session.
When it raises (or times out, or shows no result), the trimmed traceback goes back to
the model, which repairs the program, up to ``max_repairs`` times. When it runs, its
result is the final answer: the value of a variable named ``answer`` if the program
sets one (read by a second, recorded call in the same session), else the value of its
last expression, else the last line it printed. The loop is :mod:`reasonloop.agents.refine`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reasonloop.agents.react import Agent
from reasonloop.agents.refine import (
    Attempt,
    CheckRun,
    CheckVerdict,
    RefineLoop,
    build_refine_agent,
    fenced_blocks,
    run_tool_call,
    tail,
)
from reasonloop.policy.base import Policy
from reasonloop.tools.base import Tool, Toolset, ToolsetSession
from reasonloop.trajectory.schema import ToolCall, ToolResult

__all__ = ["PAL_PROMPT", "ProgramChecker", "build_pal_agent", "pal_agent_from_toolset"]

PAL_PROMPT = (
    "Solve the problem by writing a Python program. Put the whole program in one ```python block"
    " (or run it with the python tool). The program must print the final answer last, or store it"
    " in a variable named `answer`: its result is your answer. If it fails you will see the error;"
    " then send the whole corrected program."
)
_SETS_ANSWER = re.compile(r"^\s*answer\s*(:[^=\n]*)?=(?!=)", re.MULTILINE)
_PROBE = "print(answer)"
_LANGUAGES = ("python", "py", "python3", "")


def _program_result(result: ToolResult) -> str | None:
    """The value a successful run shows: its last expression's value, else its last printed line."""
    data = result.data or {}
    display = data.get("display")
    if isinstance(display, str) and display.strip():
        return display.strip()
    lines = [line.strip() for line in str(data.get("stdout", result.output)).splitlines() if line.strip()]
    return lines[-1] if lines else None


@dataclass(kw_only=True, eq=False)
class ProgramChecker:
    """Runs the program in the episode's interpreter session and reads its result."""

    tool: Tool
    """The Python tool (argument ``code``)."""
    offer: bool = True
    """Offer the tool to the model (it may submit programs as tool calls)."""

    def __post_init__(self) -> None:
        self.name = self.tool.name
        self.tools: Sequence[Tool] = (self.tool,)
        self.offered: Sequence[Tool] = (self.tool,) if self.offer else ()

    def find(self, step: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]) -> Attempt | None:
        for raw in reversed(step.get("tool_calls") or []):
            call = ToolCall.model_validate(raw)
            if call.name == self.tool.name and isinstance(code := call.arguments.get("code"), str):
                return Attempt(artefact=code, call=call)
        blocks = [b for b in fenced_blocks(step.get("text") or "", _LANGUAGES) if b.strip()]
        return Attempt(artefact=blocks[-1]) if blocks else None

    async def check(self, attempt: Attempt, session: ToolsetSession, messages: Sequence[Mapping[str, Any]]) -> CheckRun:
        call = attempt.call or ToolCall(name=self.tool.name, arguments={"code": attempt.artefact})
        run = await run_tool_call(session, call)
        observation = run.result.to_observation() if attempt.call is not None else None
        steps = [run]
        if not run.result.ok:
            verdict = CheckVerdict(ok=False, feedback=tail(run.result.to_observation()),
                                   data={"error": run.result.error, "status": run.result.status.value})  # fmt: skip
            return CheckRun(verdict=verdict, steps=steps, observation=observation)
        answer = None
        if _SETS_ANSWER.search(attempt.artefact):
            probe = await run_tool_call(session, ToolCall(name=self.tool.name, arguments={"code": _PROBE}))
            steps.append(probe)
            answer = _program_result(probe.result) if probe.result.ok else None
        answer = answer if answer is not None else _program_result(run.result)
        if answer is None:
            why = ("The program ran without error but gave no result: print the answer as its last output, "
                   "or assign it to a variable named `answer`.")  # fmt: skip
            return CheckRun(verdict=CheckVerdict(ok=False, feedback=why, data={"no_result": True}), steps=steps,
                            observation=observation)  # fmt: skip
        shown = tail(run.result.to_observation())
        return CheckRun(
            verdict=CheckVerdict(ok=True, feedback=shown, answer=answer), steps=steps, observation=observation
        )


def build_pal_agent(
    policy: Policy,
    *,
    python: Tool | None = None,
    max_repairs: int = 3,
    tools: Sequence[Tool] = (),
    system_prompt: str | None = None,
    name: str = "pal",
    **options: Any,
) -> Agent:
    """The program-aided agent with a self-debug loop.

    Args:
        policy: Writes the programs.
        python: The interpreter tool (default :func:`~reasonloop.tools.python.python_tool`
            with its default sandbox; a stateless tool cannot read ``answer`` back, so
            such programs should print their result).
        max_repairs: Failed runs the model may repair; one more failure ends the
            episode ``truncated``.
        tools: More tools offered besides the interpreter.
        system_prompt: Default :data:`PAL_PROMPT`.
        name: Agent name recorded in trajectories.
        **options: Passed to :func:`~reasonloop.agents.refine.build_refine_agent`
            (sampling, max_steps, max_tool_calls, checkpointer...).
    """
    if python is None:
        from reasonloop.tools.python import python_tool

        python = python_tool()
    loop = RefineLoop(checker=ProgramChecker(tool=python), max_repairs=max_repairs, finish="checker",
                      artefact="program")  # fmt: skip
    prompt = PAL_PROMPT if system_prompt is None else system_prompt
    return build_refine_agent(policy, loop, tools=tools, system_prompt=prompt, name=name, **options)


def pal_agent_from_toolset(policy: Policy, tools: Toolset | Sequence[Tool] | None = None, **options: Any) -> Agent:
    """:func:`build_pal_agent` in the agent registry's shape: the ``python`` tool of
    ``tools`` (if any) runs the programs, the other tools are offered as well."""
    given = list(tools or []) if not isinstance(tools, Toolset) else [tools[n] for n in tools.names]
    python = next((t for t in given if t.name == "python"), None)
    others = [t for t in given if t is not python]
    return build_pal_agent(policy, python=python, tools=others, **options)
