"""The verify-and-refine agent, and the checkers it (and the other refine agents) use.

    agent = build_verify_refine_agent(policy, max_rounds=3)              # SMT-LIB, checked by Z3
    agent = build_verify_refine_agent(policy, my_check, max_rounds=2)    # artefact -> (ok, feedback)
    traj = await AgentRuntime(agent).run("Find x, y with ...", task_id="q1")

A checker is anything with ``find`` (the attempt in a policy turn) and ``check`` (its
verdict): :class:`ToolChecker` runs a tool (Z3, the Python sandbox, a planner) on the
artefact, :class:`CallableChecker` calls a function. The loop around them is
:mod:`reasonloop.agents.refine`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reasonloop.agents.react import Agent
from reasonloop.agents.refine import (
    Attempt,
    Checker,
    CheckRun,
    CheckVerdict,
    FinishMode,
    RefineLoop,
    build_refine_agent,
    fenced_blocks,
    run_tool_call,
    tail,
)
from reasonloop.errors import ConfigError
from reasonloop.policy.base import Policy
from reasonloop.policy.parsing import extract_answer
from reasonloop.tools.base import Tool, Toolset, ToolsetSession
from reasonloop.trajectory.schema import ToolCall, ToolResult

__all__ = [
    "CallableChecker",
    "CheckFn",
    "ToolChecker",
    "build_verify_refine_agent",
    "smt_checker",
    "verify_refine_agent_from_toolset",
]

CheckFn = Callable[[str], "tuple[bool, str] | Awaitable[tuple[bool, str]]"]
"""A checker function: artefact -> (accepted, feedback for the model)."""


def _default_judge(attempt: Attempt, result: ToolResult) -> CheckVerdict:
    return CheckVerdict(ok=result.ok, feedback=tail(result.to_observation()), answer=result.output.strip() or None)


def _string_argument(t: Tool) -> str:
    params = t.spec.parameters
    props: dict[str, Any] = params.get("properties", {})
    strings = [p for p in params.get("required", list(props)) if props.get(p, {}).get("type") == "string"]
    if len(strings) != 1:
        raise ConfigError(f"tool {t.name!r}: say which argument carries the artefact (argument=...)")
    return strings[0]


@dataclass(kw_only=True, eq=False)
class ToolChecker:
    """Judges attempts by running a tool on them (the model may call the tool itself)."""

    tool: Tool
    argument: str | None = None
    """Argument the artefact fills (default: the tool's only required string argument)."""
    languages: tuple[str, ...] = ()
    """Fence tags of artefacts written in the text (empty: any fenced block)."""
    fixed: Callable[[Sequence[Mapping[str, Any]]], dict[str, Any]] | None = None
    """Other arguments of a synthesised call, from the episode's initial messages."""
    judge: Callable[[Attempt, ToolResult], CheckVerdict] = _default_judge
    """Turns the tool result into a verdict (default: accepted when the call is ok)."""
    offer: bool = True
    """Offer the tool to the model, so it can submit attempts as tool calls."""

    def __post_init__(self) -> None:
        self.argument = self.argument or _string_argument(self.tool)
        self.name = self.tool.name
        self.tools: Sequence[Tool] = (self.tool,)
        self.offered: Sequence[Tool] = (self.tool,) if self.offer else ()

    def find(self, step: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]) -> Attempt | None:
        for raw in reversed(step.get("tool_calls") or []):
            call = ToolCall.model_validate(raw)
            if call.name == self.tool.name and isinstance(value := call.arguments.get(str(self.argument)), str):
                return Attempt(artefact=value, call=call)
        blocks = fenced_blocks(step.get("text") or "", self.languages)
        return Attempt(artefact=blocks[-1]) if blocks else None

    async def check(self, attempt: Attempt, session: ToolsetSession, messages: Sequence[Mapping[str, Any]]) -> CheckRun:
        call = attempt.call
        if call is None:
            extra = self.fixed(messages) if self.fixed is not None else {}
            call = ToolCall(name=self.tool.name, arguments={**extra, str(self.argument): attempt.artefact})
        step = await run_tool_call(session, call)
        observation = step.result.to_observation() if attempt.call is not None else None
        return CheckRun(verdict=self.judge(attempt, step.result), steps=[step], observation=observation)


@dataclass(kw_only=True, eq=False)
class CallableChecker:
    """Judges attempts with a function ``artefact -> (ok, feedback)`` (sync or async).

    The artefact is the last fenced block of the turn (tagged with one of ``languages``
    if given), else its ``<answer>`` content. A function that raises rejects the attempt
    with the error as feedback (the artefact came from the model; it must not end the run).
    """

    fn: CheckFn
    name: str = "checker"
    languages: tuple[str, ...] = ()
    tools: Sequence[Tool] = ()
    offered: Sequence[Tool] = ()

    def find(self, step: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]) -> Attempt | None:
        text = step.get("text") or ""
        blocks = fenced_blocks(text, self.languages)
        if blocks:
            return Attempt(artefact=blocks[-1])
        answer = extract_answer(text)
        return Attempt(artefact=answer) if answer else None

    async def check(self, attempt: Attempt, session: ToolsetSession, messages: Sequence[Mapping[str, Any]]) -> CheckRun:
        try:
            if inspect.iscoroutinefunction(self.fn):
                outcome = await self.fn(attempt.artefact)
            else:
                outcome = await asyncio.to_thread(self.fn, attempt.artefact)
                if inspect.isawaitable(outcome):
                    outcome = await outcome
            ok, feedback = outcome  # type: ignore[misc]
        except Exception as exc:
            message = f"the checker failed on this attempt: {type(exc).__name__}: {exc}"
            return CheckRun(verdict=CheckVerdict(ok=False, feedback=message, data={"checker_error": True}))
        return CheckRun(verdict=CheckVerdict(ok=bool(ok), feedback=tail(str(feedback)), answer=attempt.artefact))


def smt_checker(*, expect: str | None = None, tool: Tool | None = None, timeout_s: float = 5.0) -> ToolChecker:
    """SMT-LIB attempts checked by the ``z3`` tool.

    Accepted when z3 answers ``sat`` or ``unsat`` (and that is ``expect``, when given:
    ``unsat`` to prove a claim by refuting its negation). Errors, ``unknown`` and the
    wrong verdict are rejected with z3's report.
    """
    if tool is None:
        from reasonloop.tools.smt import smt_tool

        tool = smt_tool(timeout_s=timeout_s)

    def judge(attempt: Attempt, result: ToolResult) -> CheckVerdict:
        report = tail(result.to_observation())
        verdict = str((result.data or {}).get("verdict", "error" if not result.ok else "unknown"))
        if not result.ok or verdict not in ("sat", "unsat"):
            return CheckVerdict(ok=False, feedback=report, data={"smt_verdict": verdict})
        if expect is not None and verdict != expect:
            why = f"z3 answered {verdict}, but the claim needs {expect}.\n{report}"
            return CheckVerdict(ok=False, feedback=why, data={"smt_verdict": verdict})
        return CheckVerdict(ok=True, feedback=report, answer=result.output.strip(), data={"smt_verdict": verdict})

    languages = ("smt2", "smt", "smtlib", "smtlib2", "smt-lib", "lisp", "")
    return ToolChecker(tool=tool, argument="smtlib", languages=languages, judge=judge)


VERIFY_PROMPT = (
    "Solve the task with {checker}: write the {artefact} in a fenced ```{language} block"
    " (or call the {checker} tool with it). The checker's verdict comes back to you; fix any error"
    " it reports. When the check passes, give the final answer inside <answer></answer> tags."
)


def build_verify_refine_agent(
    policy: Policy,
    checker: Checker | Tool | CheckFn | None = None,
    *,
    max_rounds: int = 3,
    finish: FinishMode = "model",
    artefact: str = "SMT-LIB 2 script",
    system_prompt: str | None = None,
    name: str = "verify_refine",
    **options: Any,
) -> Agent:
    """The verify-and-refine agent: the model proposes, the checker judges, errors go back.

    Args:
        policy: Writes the attempts.
        checker: A :class:`Checker`, a :class:`Tool` (its string argument carries the
            artefact) or a function ``artefact -> (ok, feedback)``; default: SMT-LIB
            checked by Z3 (:func:`smt_checker`).
        max_rounds: Repairs after the first attempt; one more rejection ends the episode
            ``truncated``.
        finish: What follows an accepted attempt (see :data:`FinishMode`).
        artefact: What the model writes, as the prompts name it.
        system_prompt: Default: ask for the artefact in a fenced block and the answer in tags.
        name: Agent name recorded in trajectories.
        **options: Passed to :func:`build_refine_agent` (sampling, max_steps, checkpointer...).
    """
    if checker is None:
        checker = smt_checker()
    elif isinstance(checker, Tool):
        checker = ToolChecker(tool=checker)
    elif not hasattr(checker, "find"):
        if not callable(checker):
            raise ConfigError(f"checker: expected a Checker, a Tool or a function, got {type(checker).__name__}")
        checker = CallableChecker(fn=checker)  # type: ignore[arg-type]
    chk: Checker = checker  # type: ignore[assignment]
    language = next(iter(getattr(chk, "languages", ()) or ("",)))
    prompt = system_prompt if system_prompt is not None else VERIFY_PROMPT.format(
        artefact=artefact, checker=chk.name, language=language)  # fmt: skip
    loop = RefineLoop(checker=chk, max_repairs=max_rounds, finish=finish, artefact=artefact)
    return build_refine_agent(policy, loop, system_prompt=prompt, name=name, **options)


def verify_refine_agent_from_toolset(
    policy: Policy, tools: Toolset | Sequence[Tool] | None = None, **options: Any
) -> Agent:
    """:func:`build_verify_refine_agent` in the agent registry's shape: the ``z3`` tool of
    ``tools`` (if any) checks SMT-LIB attempts; the other tools are offered as well."""
    given = [tools[n] for n in tools.names] if isinstance(tools, Toolset) else list(tools or [])
    z3 = next((t for t in given if t.name == "z3"), None)
    return build_verify_refine_agent(policy, smt_checker(tool=z3), tools=[t for t in given if t is not z3], **options)
