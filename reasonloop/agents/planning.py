"""Planning agents: LLM+P (the model writes PDDL, a planner solves) and plan-then-verify.

    agent = build_llm_p_agent(policy, domain_pddl, max_repairs=3)
    agent = build_plan_verify_agent(policy, max_repairs=3)   # domain and problem read from the prompt

LLM+P: the model translates the task (English) into a PDDL problem for the given domain
(a ```pddl block); the ``plan`` tool solves it (:mod:`reasonloop.planners`). Parse errors
(with line and symbol), "unsolvable", timeouts and, when ``validate`` is on, the
validator's explanation of a failing plan go back to the model, which repairs the
problem, up to ``max_repairs`` times. Once solved, the model explains the plan; the final
answer is the plan itself, one PDDL action per line.

Plan-then-verify: the model proposes the plan itself (inside ``<answer>`` tags); the
``validate_plan`` tool checks it against the domain and problem and explains the first
failure (which step, which precondition is false, which goals are unmet), which goes
back to the model. A valid plan is the final answer, normalised to PDDL syntax.

The domain (and, for plan-then-verify, the problem) is given to the builder or read
from the episode's prompt, where a ``(define (domain ...))`` / ``(define (problem ...))``
appears. The loop is :mod:`reasonloop.agents.refine`.
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
from reasonloop.policy.parsing import extract_answer
from reasonloop.tools.base import Tool, Toolset, ToolsetSession
from reasonloop.trajectory.schema import ToolCall, ToolStep

__all__ = [
    "LLM_P_PROMPT",
    "PLAN_VERIFY_PROMPT",
    "PlanChecker",
    "ProblemChecker",
    "build_llm_p_agent",
    "build_plan_verify_agent",
    "find_pddl",
    "llm_p_agent_from_toolset",
    "plan_verify_agent_from_toolset",
]

LLM_P_PROMPT = (
    "You are given a planning domain in PDDL and a task in English. Write the PDDL problem for the task,"
    " (define (problem NAME) (:domain DOMAIN) (:objects ...) (:init ...) (:goal ...)), using only the"
    " domain's predicates, in one ```pddl block. A classical planner solves it. If the problem has errors"
    " or no solution you will be told why: then send the whole corrected problem."
)
LLM_P_EXPLAIN = (
    "The planner solved your problem. Explain the plan step by step in plain words, then give the plan,"
    " one PDDL action per line, inside <answer></answer> tags."
)
PLAN_VERIFY_PROMPT = (
    "You are given a planning task. Propose a plan that reaches the goal: one PDDL action per line,"
    " e.g. (action arg1 arg2), inside <answer></answer> tags. A validator checks it; if a step cannot be"
    " applied or a goal is not reached you will be told where, and must send the whole corrected plan."
)


def find_pddl(text: str, kind: str) -> str | None:
    """The last ``(define (KIND ...) ...)`` in ``text`` (``kind``: domain or problem).

    An unbalanced definition is returned up to the end of the text: the parser then
    reports what is missing, which a model can act on.
    """
    starts = list(re.finditer(rf"\(\s*define\s*\(\s*{kind}\b", text, re.IGNORECASE))
    if not starts:
        return None
    begin, depth, i = starts[-1].start(), 0, starts[-1].start()
    while i < len(text):
        ch = text[i]
        if ch == ";":  # a comment runs to the end of the line and may hold parentheses
            newline = text.find("\n", i)
            i = len(text) if newline < 0 else newline
            continue
        depth += (ch == "(") - (ch == ")")
        if depth == 0:
            return text[begin : i + 1]
        i += 1
    return text[begin:].rstrip()


def _prompt_text(messages: Sequence[Mapping[str, Any]]) -> str:
    return "\n".join(str(m.get("content") or "") for m in messages)


def _tool(tools: Sequence[Tool] | None, name: str) -> Tool:
    for t in tools or ():
        if t.name == name:
            return t
    from reasonloop.planners.tools import planner_tools

    return next(t for t in planner_tools() if t.name == name)


def _missing(what: str) -> CheckRun:
    feedback = f"There is no PDDL {what} to check against: write the {what} in a ```pddl block too."
    return CheckRun(verdict=CheckVerdict(ok=False, feedback=feedback, data={"missing": what}))


@dataclass(kw_only=True, eq=False)
class ProblemChecker:
    """LLM+P: solve the model's PDDL problem with the ``plan`` tool (and validate the plan)."""

    plan_tool: Tool
    validate_tool: Tool | None = None
    """When set, the plan found is checked by ``validate_plan`` against the same problem."""
    domain: str | None = None
    """The domain; ``None``: read it from the prompt, else from the model's reply."""
    planner: str = "fast-downward"
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        self.name = "planner"
        self.tools: Sequence[Tool] = tuple(t for t in (self.plan_tool, self.validate_tool) if t is not None)
        self.offered: Sequence[Tool] = ()

    def find(self, step: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]) -> Attempt | None:
        text = step.get("text") or ""
        blocks = [b for b in fenced_blocks(text) if find_pddl(b, "problem")]
        problem = find_pddl(blocks[-1] if blocks else text, "problem")
        if problem is None:
            return None
        domain = find_pddl(text, "domain")
        return Attempt(artefact=problem, extra={"domain": domain} if domain else {})

    async def check(self, attempt: Attempt, session: ToolsetSession, messages: Sequence[Mapping[str, Any]]) -> CheckRun:
        domain = self.domain or find_pddl(_prompt_text(messages), "domain") or attempt.extra.get("domain")
        if domain is None:
            return _missing("domain")
        args = {"domain": domain, "problem": attempt.artefact, "planner": self.planner, "timeout_s": self.timeout_s}
        solved = await run_tool_call(session, ToolCall(name=self.plan_tool.name, arguments=args))
        data = solved.result.data or {}
        status = str(data.get("status", solved.result.status.value))
        steps: list[ToolStep] = [solved]
        report = tail(solved.result.to_observation())
        plan = [str(a) for a in data.get("plan", [])]
        if status not in ("solved_optimally", "solved_satisficing"):
            if status == "unsolvable":
                report = ("The planner proved this problem has no solution: compare the initial state and the goal"
                          f" with the task.\n{report}")  # fmt: skip
            return CheckRun(verdict=CheckVerdict(ok=False, feedback=report, data={"plan_status": status}), steps=steps)
        if self.validate_tool is not None:
            args = {"domain": domain, "problem": attempt.artefact, "plan": "\n".join(plan)}
            checked = await run_tool_call(session, ToolCall(name=self.validate_tool.name, arguments=args))
            steps.append(checked)
            valid = (checked.result.data or {}).get("status")
            if valid != "valid":
                why = (
                    f"The plan the planner found does not pass the validator:\n{tail(checked.result.to_observation())}"
                )
                verdict = CheckVerdict(ok=False, feedback=why, data={"plan_status": status, "validation": valid})
                return CheckRun(verdict=verdict, steps=steps)
        verdict = CheckVerdict(ok=True, feedback=report, answer="\n".join(plan), data={"plan_status": status})
        return CheckRun(verdict=verdict, steps=steps)


@dataclass(kw_only=True, eq=False)
class PlanChecker:
    """Plan-then-verify: check the model's plan with the ``validate_plan`` tool."""

    validate_tool: Tool
    domain: str | None = None
    """The domain; ``None``: read it from the prompt."""
    problem: str | None = None
    """The problem; ``None``: read it from the prompt, else from the model's reply."""

    def __post_init__(self) -> None:
        self.name = "validator"
        self.tools: Sequence[Tool] = (self.validate_tool,)
        self.offered: Sequence[Tool] = ()

    def find(self, step: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]) -> Attempt | None:
        text = step.get("text") or ""
        plan = extract_answer(text)
        if plan is None:
            blocks = fenced_blocks(text, ("plan",))
            plan = blocks[-1] if blocks else None
        if not plan:
            return None
        problem = find_pddl(text, "problem")
        return Attempt(artefact=plan, extra={"problem": problem} if problem else {})

    async def check(self, attempt: Attempt, session: ToolsetSession, messages: Sequence[Mapping[str, Any]]) -> CheckRun:
        prompt = _prompt_text(messages)
        domain = self.domain or find_pddl(prompt, "domain")
        problem = self.problem or find_pddl(prompt, "problem") or attempt.extra.get("problem")
        if domain is None or problem is None:
            return _missing("domain" if domain is None else "problem")
        args = {"domain": domain, "problem": problem, "plan": attempt.artefact}
        checked = await run_tool_call(session, ToolCall(name=self.validate_tool.name, arguments=args))
        data = checked.result.data or {}
        status = str(data.get("status", checked.result.status.value))
        details = {"validation": status, "failed_step": data.get("failed_step"), "unmet_goals": data.get("unmet_goals")}
        if status != "valid":
            verdict = CheckVerdict(ok=False, feedback=tail(checked.result.to_observation()), data=details)
            return CheckRun(verdict=verdict, steps=[checked])
        plan = "\n".join(str(a) for a in data.get("plan", []))
        return CheckRun(verdict=CheckVerdict(ok=True, feedback=checked.result.output, answer=plan, data=details),
                        steps=[checked])  # fmt: skip


def build_llm_p_agent(
    policy: Policy,
    domain: str | None = None,
    *,
    max_repairs: int = 3,
    planner: str = "fast-downward",
    timeout_s: float = 30.0,
    validate: bool = True,
    explain: bool = True,
    tools: Sequence[Tool] | None = None,
    system_prompt: str | None = None,
    name: str = "llm_p",
    **options: Any,
) -> Agent:
    """The LLM+P agent with the repair loop.

    Args:
        policy: Writes the PDDL problem and the explanation.
        domain: The PDDL domain (shown in the system prompt); ``None``: the domain in each
            episode's prompt.
        max_repairs: Rejected problems the model may repair; one more ends the episode ``truncated``.
        planner: Engine of the ``plan`` tool (``fast-downward``, ``pyperplan``, ``enhsp``).
        timeout_s: Planner time per attempt.
        validate: Also check the plan found with ``validate_plan``.
        explain: After a plan is found, let the model explain it (the plan stays the answer).
        tools: The ``plan`` / ``validate_plan`` tools to use (default: a new
            :func:`~reasonloop.planners.tools.planner_tools` pair with a warm worker).
        system_prompt: Default :data:`LLM_P_PROMPT` (plus the domain, when given).
        name: Agent name recorded in trajectories.
        **options: Passed to :func:`~reasonloop.agents.refine.build_refine_agent`.
    """
    checker = ProblemChecker(plan_tool=_tool(tools, "plan"), validate_tool=_tool(tools, "validate_plan") if validate
                             else None, domain=domain, planner=planner, timeout_s=timeout_s)  # fmt: skip
    loop = RefineLoop(checker=checker, max_repairs=max_repairs, finish="explain" if explain else "checker",
                      artefact="PDDL problem", answer_prompt=LLM_P_EXPLAIN)  # fmt: skip
    prompt = system_prompt
    if prompt is None:
        prompt = LLM_P_PROMPT + (f"\nThe domain:\n```pddl\n{domain.strip()}\n```" if domain else "")
    return build_refine_agent(policy, loop, system_prompt=prompt, name=name, **options)


def build_plan_verify_agent(
    policy: Policy,
    domain: str | None = None,
    problem: str | None = None,
    *,
    max_repairs: int = 3,
    tools: Sequence[Tool] | None = None,
    system_prompt: str | None = None,
    name: str = "plan_verify",
    **options: Any,
) -> Agent:
    """The plan-then-verify agent: the model plans, the validator explains what fails.

    Args:
        policy: Writes the plans.
        domain: The PDDL domain (shown in the system prompt); ``None``: the one in the prompt.
        problem: The PDDL problem (shown too); ``None``: the one in the prompt, else the one
            the model writes next to its plan.
        max_repairs: Rejected plans the model may repair; one more ends the episode ``truncated``.
        tools: The ``validate_plan`` tool to use (default: a new one with a warm worker).
        system_prompt: Default :data:`PLAN_VERIFY_PROMPT` (plus the given PDDL).
        name: Agent name recorded in trajectories.
        **options: Passed to :func:`~reasonloop.agents.refine.build_refine_agent`.
    """
    checker = PlanChecker(validate_tool=_tool(tools, "validate_plan"), domain=domain, problem=problem)
    loop = RefineLoop(checker=checker, max_repairs=max_repairs, finish="checker", artefact="plan",
                      missing_prompt="Your reply contains no plan: give it inside <answer></answer> tags.")  # fmt: skip
    prompt = system_prompt
    if prompt is None:
        pddl = (("domain", domain), ("problem", problem))
        given = [f"The {kind}:\n```pddl\n{text.strip()}\n```" for kind, text in pddl if text]
        prompt = "\n".join([PLAN_VERIFY_PROMPT, *given])
    return build_refine_agent(policy, loop, system_prompt=prompt, name=name, **options)


def _given(tools: Toolset | Sequence[Tool] | None) -> list[Tool]:
    return [tools[n] for n in tools.names] if isinstance(tools, Toolset) else list(tools or [])


def llm_p_agent_from_toolset(policy: Policy, tools: Toolset | Sequence[Tool] | None = None, **options: Any) -> Agent:
    """:func:`build_llm_p_agent` in the agent registry's shape (domain from each prompt;
    the ``plan``/``validate_plan`` tools of ``tools`` when present)."""
    return build_llm_p_agent(policy, tools=_given(tools), **options)


def plan_verify_agent_from_toolset(
    policy: Policy, tools: Toolset | Sequence[Tool] | None = None, **options: Any
) -> Agent:
    """:func:`build_plan_verify_agent` in the agent registry's shape."""
    return build_plan_verify_agent(policy, tools=_given(tools), **options)
