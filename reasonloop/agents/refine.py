"""The refine loop: the model proposes an artefact, a checker judges it, the verdict goes back.

The graph keeps the ReAct node names, so :class:`~reasonloop.agents.AgentRuntime`
advances, streams and forks it unchanged::

    START -> policy --(an attempt, or a turn that needs an answer)--> tools --(rejected, rounds left)--> policy
                    \\--(final answer, or out of budget)--> END       \\--(accepted, or rounds used up)--> END

``tools`` runs the checker on the artefact of the last turn (a call of the checker's
tool, or a fenced block in the text). Each attempt records its checker run (a
:class:`ToolStep` per tool call) and a verdict :class:`NoteStep` whose ``data`` holds
``verdict`` (accepted / rejected / missing), ``attempt``, ``repairs``, ``max_repairs``
and the feedback; a rejected verdict is shown to the model (``role="user"``), which
then repairs. After ``max_repairs`` rejected repairs the episode ends ``truncated``.
Turns without an attempt (tool calls of other tools, unreadable calls, a failed or
empty turn) get the ReAct observations. The verify-and-refine agent
(:mod:`reasonloop.agents.verify`), the program-aided agent (:mod:`reasonloop.agents.pal`)
and the planning agents (:mod:`reasonloop.agents.planning`) are this loop with
different checkers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from reasonloop.agents.nodes import (
    POLICY_NODE,
    TOOLS_NODE,
    ReactDeps,
    make_policy_node,
    make_tools_node,
    route_after_policy,
)
from reasonloop.agents.react import Agent
from reasonloop.agents.state import AgentContext, AgentLimits, ReactState
from reasonloop.errors import ConfigError
from reasonloop.policy.base import Context, Policy, SamplingParams
from reasonloop.tools.base import Tool, Toolset, ToolsetSession
from reasonloop.trajectory.schema import NoteStep, ToolCall, ToolStep

__all__ = [
    "Attempt",
    "CheckRun",
    "CheckVerdict",
    "Checker",
    "FinishMode",
    "RefineLoop",
    "RefineState",
    "build_refine_agent",
    "fenced_blocks",
    "run_tool_call",
    "tail",
]

FinishMode = Literal["checker", "model", "explain"]
"""After an accepted attempt: end with the checker's answer (``checker``), let the model
answer from the verdict (``model``), or let it explain while the checker's answer stays
the final answer (``explain``)."""

_FENCE = re.compile(r"```[ \t]*([\w+.-]*)[^\n]*\n(.*?)```", re.DOTALL)
_FEEDBACK_CHARS = 4000


class RefineState(ReactState, total=False):
    """ReAct state plus the refine loop's counters (all JSON)."""

    phase: Literal["propose", "answer"]
    """``answer`` once an attempt is accepted and the model writes the final turn."""
    attempts: int
    """Attempts checked so far (a reply without an artefact counts as one)."""
    accepted: str | None
    """The checker's answer for the accepted attempt."""


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """An artefact the model proposed."""

    artefact: str
    call: ToolCall | None = None
    """The model's own tool call carrying it (``None`` when it came from the text)."""
    extra: Mapping[str, str] = field(default_factory=dict)
    """Other parts of the same turn the checker needs (e.g. a PDDL problem next to a plan)."""


@dataclass(frozen=True, kw_only=True)
class CheckVerdict:
    """A checker's judgement of one attempt."""

    ok: bool
    feedback: str
    """The checker's report, in words the model can act on."""
    answer: str | None = None
    """The final answer an accepted attempt gives (``FinishMode`` ``checker``/``explain``)."""
    data: dict[str, Any] = field(default_factory=dict)
    """JSON details recorded on the verdict note."""


@dataclass(kw_only=True)
class CheckRun:
    """What checking one attempt did: its verdict and the tool calls it made."""

    verdict: CheckVerdict
    steps: list[ToolStep] = field(default_factory=list)
    observation: str | None = None
    """The result text of the attempt's own tool call (its tool message), if it made one."""


class Checker(Protocol):
    """Finds the attempt in a policy turn and judges it."""

    name: str
    tools: Sequence[Tool]
    """Tools the checker runs (put in the agent's toolset, opened per episode)."""
    offered: Sequence[Tool]
    """Tools the model may call itself to submit an attempt."""

    def find(self, step: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]) -> Attempt | None: ...

    async def check(
        self, attempt: Attempt, session: ToolsetSession, messages: Sequence[Mapping[str, Any]]
    ) -> CheckRun: ...


def fenced_blocks(text: str, languages: Sequence[str] = ()) -> list[str]:
    """Bodies of the Markdown code fences in ``text`` (tagged with one of ``languages`` if given)."""
    wanted = {lang.lower() for lang in languages}
    return [m.group(2).strip("\n") for m in _FENCE.finditer(text) if not wanted or m.group(1).lower() in wanted]


async def run_tool_call(session: ToolsetSession, call: ToolCall) -> ToolStep:
    """Run ``call`` through the episode's tools and record it as a ``tools`` step."""
    started, t0 = time.time(), time.perf_counter()
    result = await session.call(call)
    return ToolStep(node=TOOLS_NODE, started_at=started, duration_s=time.perf_counter() - t0, call=call, result=result)


def tail(text: str, limit: int = _FEEDBACK_CHARS) -> str:
    """``text``, cut from the front to ``limit`` characters (the end of a report matters most)."""
    return text if len(text) <= limit else f"[... {len(text) - limit} characters cut]\n" + text[-limit:]


@dataclass(frozen=True, kw_only=True)
class RefineLoop:
    """How the loop talks to the model around the checker."""

    checker: Checker
    max_repairs: int = 3
    """Rejected attempts the model may repair; one more rejection ends the episode ``truncated``."""
    finish: FinishMode = "model"
    artefact: str = "artefact"
    """What the model writes, without an article ("program", "SMT-LIB 2 script"...)."""
    repair_prompt: str = "Fix the problem and send the whole corrected {artefact}."
    answer_prompt: str = "The check passed. Give the final answer inside <answer></answer> tags."
    missing_prompt: str = "Your reply contains no {artefact}: write it in a fenced code block."

    def __post_init__(self) -> None:
        if self.max_repairs < 0:
            raise ConfigError(f"max_repairs must be >= 0, got {self.max_repairs}")


def _needs_react(step: Mapping[str, Any]) -> bool:
    """A turn the ReAct tools node answers: tool calls, unreadable calls, failed, empty or cut."""
    return bool(step["tool_calls"] or step["parse_errors"] or step["finish_reason"] in ("error", "length")
                or not step["text"].strip())  # fmt: skip


def _emit(runtime: Runtime[AgentContext], index: int, step: dict[str, Any]) -> None:
    runtime.stream_writer({"episode_id": runtime.context.episode_id, "node": TOOLS_NODE, "index": index, "step": step})


def _verdict_note(
    loop: RefineLoop, run: CheckRun, n: int, state: Mapping[str, Any], limits: AgentLimits
) -> tuple[NoteStep, dict[str, Any]]:
    """The verdict note of attempt ``n`` and the state update it implies."""
    v = run.verdict
    kind = "accepted" if v.ok else ("missing" if v.data.get("missing") else "rejected")
    data: dict[str, Any] = {**v.data, "verdict": kind, "checker": loop.checker.name, "attempt": n,
                            "repairs": n - 1, "max_repairs": loop.max_repairs, "feedback": v.feedback}  # fmt: skip
    calls_left = limits.max_steps - state["policy_steps"]
    seen = run.observation is not None and (v.feedback == tail(run.observation) or v.feedback in run.observation)
    report = "" if seen else f"\n{v.feedback}"  # the tool message already showed it
    update: dict[str, Any] = {"attempts": n}
    if v.ok:
        update["accepted"] = v.answer
        if loop.finish == "checker" or (loop.finish == "explain" and calls_left <= 0):
            update.update(status="finished", final_answer=v.answer)
            return NoteStep(node=TOOLS_NODE, text=f"{loop.checker.name} accepted attempt {n}", data=data), update
        if calls_left <= 0:
            stop = f"attempt {n} was accepted but max_steps={limits.max_steps} policy calls are used up"
            update.update(status="truncated", reason=stop)
            return NoteStep(node=TOOLS_NODE, text=stop, data={**data, "status": "truncated"}), update
        update["phase"] = "answer"
        text = f"{loop.checker.name} accepted attempt {n}.{report}\n{loop.answer_prompt}"
        return NoteStep(node=TOOLS_NODE, text=text, role="user", data=data), update
    if n > loop.max_repairs or calls_left <= 0:
        why = (f"{loop.checker.name} rejected attempt {n} and max_repairs={loop.max_repairs} repairs are used up"
               if n > loop.max_repairs else f"reached max_steps={limits.max_steps} policy calls")  # fmt: skip
        update.update(status="truncated", reason=why)
        return NoteStep(node=TOOLS_NODE, text=f"{why}: {v.feedback}", data={**data, "status": "truncated"}), update
    left = loop.max_repairs - n + 1
    head = (f"{loop.checker.name} rejected attempt {n} ({left} repair{'s' if left != 1 else ''} left)."
            + report)  # fmt: skip
    text = f"{head}\n{loop.repair_prompt.format(artefact=loop.artefact)}"
    return NoteStep(node=TOOLS_NODE, text=text, role="user", data=data), update


def _make_check_node(deps: ReactDeps, loop: RefineLoop) -> Callable[..., Awaitable[dict[str, Any]]]:
    react_tools = make_tools_node(deps)

    async def tools(state: RefineState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
        last = state["steps"][-1]
        initial = _initial_messages(state["messages"])
        attempt = loop.checker.find(last, initial) if state.get("phase", "propose") == "propose" else None
        if attempt is None and (state.get("phase") == "answer" or _needs_react(last)):
            return await react_tools(state, runtime)  # type: ignore[arg-type]
        session = runtime.context.session
        n = state.get("attempts", 0) + 1
        steps: list[ToolStep | NoteStep] = []
        messages: list[dict[str, Any]] = []
        if attempt is None:
            missing = loop.missing_prompt.format(artefact=loop.artefact)
            run = CheckRun(verdict=CheckVerdict(ok=False, feedback=missing, data={"missing": True}))
        else:
            others = [ToolCall.model_validate(c) for c in last["tool_calls"]]
            for call in others:  # other calls of the same turn still get their results
                if attempt.call is None or call.id != attempt.call.id:
                    steps.append(await run_tool_call(session, call))
            run = await loop.checker.check(attempt, session, initial)
            steps.extend(run.steps)
        for s in steps:
            if isinstance(s, ToolStep) and (s.call.id in {c["id"] for c in last["tool_calls"]}):
                messages.append(_tool_message(s, deps.policy.tool_format))
        note, update = _verdict_note(loop, run, n, state, deps.limits)
        steps.append(note)
        if note.role is not None:
            messages.append({"role": note.role, "content": note.text})
        token_ids = state.get("token_ids")
        if messages and token_ids is not None:
            forced = deps.policy.extend(Context(messages=state["messages"], token_ids=token_ids), messages, deps.specs)
            if forced:
                steps[-1].token_ids = list(forced)
                update["token_ids"] = token_ids + list(forced)
        dumped = [s.model_dump(mode="json") for s in steps]
        for i, event in enumerate(dumped):
            _emit(runtime, len(state["steps"]) + i, event)
        update.update(
            messages=[*state["messages"], *messages], steps=dumped,
            tool_calls=state["tool_calls"] + sum(isinstance(s, ToolStep) for s in steps),
            feedback=state["feedback"] + int(note.role is not None),
        )  # fmt: skip
        return update

    return tools


def _initial_messages(messages: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The messages before the first assistant turn (the task as given)."""
    first = next((i for i, m in enumerate(messages) if m.get("role") == "assistant"), len(messages))
    return list(messages[:first])


def _tool_message(step: ToolStep, tool_format: str) -> dict[str, Any]:
    content = step.result.to_observation()
    if tool_format == "openai":
        return {"role": "tool", "tool_call_id": step.call.id, "content": content}
    return {"role": "tool", "name": step.call.name, "content": content}


def _make_policy_node(deps: ReactDeps, loop: RefineLoop) -> Callable[..., Awaitable[dict[str, Any]]]:
    inner = make_policy_node(deps)

    async def policy(state: RefineState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
        update = await inner(state, runtime)  # type: ignore[arg-type]
        if update.get("status") != "finished":
            return update
        if state.get("phase", "propose") == "propose":  # a text turn is an attempt, never a final answer
            update["status"], update["final_answer"] = "running", None
        elif loop.finish == "explain":
            update["final_answer"] = state.get("accepted")
        return update

    return policy


async def _route_after_check(state: RefineState) -> str:
    return POLICY_NODE if state["status"] == "running" else END


def build_refine_agent(
    policy: Policy,
    loop: RefineLoop,
    *,
    tools: Sequence[Tool] = (),
    system_prompt: str | None = None,
    sampling: SamplingParams | None = None,
    max_steps: int | None = None,
    max_tool_calls: int | None = None,
    max_errors: int = 3,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    name: str = "verify_refine",
) -> Agent:
    """Compile the propose -> check -> repair graph around ``loop.checker``.

    Args:
        policy: Writes the attempts.
        loop: The checker, the repair budget and the prompts.
        tools: More tools offered besides the checker's.
        system_prompt: System message put before text prompts.
        sampling: Sampling settings of every policy call.
        max_steps: Most policy calls (default: every attempt, the final turn and 2 spare
            turns for failed or empty replies).
        max_tool_calls: Most tool calls (default ``4 * max_steps``).
        max_errors: Most consecutive failed policy calls.
        checkpointer: Checkpointer of ``agent.graph``.
        name: Agent name recorded in trajectories.
    """
    steps = max_steps if max_steps is not None else loop.max_repairs + 4
    limits = AgentLimits(max_steps=steps, max_tool_calls=max_tool_calls or 4 * steps, max_errors=max_errors)
    toolset = Toolset(_unique([*loop.checker.tools, *tools]))
    offered = _unique([*loop.checker.offered, *tools])
    specs = tuple(t.spec for t in offered)
    deps = ReactDeps(policy=policy, specs=specs, sampling=sampling or SamplingParams(), limits=limits)
    builder: StateGraph[Any, Any, Any, Any] = StateGraph(RefineState, context_schema=AgentContext)
    builder.add_node(POLICY_NODE, _make_policy_node(deps, loop))  # type: ignore[call-overload, arg-type]
    builder.add_node(TOOLS_NODE, _make_check_node(deps, loop))  # type: ignore[call-overload, arg-type]
    builder.add_edge(START, POLICY_NODE)
    builder.add_conditional_edges(POLICY_NODE, route_after_policy, [TOOLS_NODE, END])
    builder.add_conditional_edges(TOOLS_NODE, _route_after_check, [POLICY_NODE, END])
    graph = builder.compile(checkpointer=checkpointer, name=name).with_config(recursion_limit=limits.recursion_limit)
    return Agent(name=name, graph=graph, builder=builder, policy=policy,  # type: ignore[arg-type]
                 toolset=toolset, specs=specs, system_prompt=system_prompt, limits=limits)  # fmt: skip


def _unique(tools: Sequence[Tool]) -> list[Tool]:
    seen: dict[str, Tool] = {}
    for t in tools:
        if seen.setdefault(t.name, t) is not t:
            raise ConfigError(f"two different tools are named {t.name!r}")
    return list(seen.values())
