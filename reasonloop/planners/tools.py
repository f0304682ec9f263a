"""``plan`` and ``validate_plan`` as tools any agent can call.

    tools = planner_tools()              # warm: one fork-server worker shared by all episodes
    toolset = Toolset(tools)

``planner_tools`` binds the tools to a :class:`PlannerSessions` factory, so every
episode of a :class:`~reasonloop.tools.base.Toolset` reaches the same warm planner
worker. The module-level :data:`plan` and :data:`validate_plan` hold no state: called
outside a toolset session they start a one-off planner process per call (about 1-2 s).

A built-in domain (:data:`~reasonloop.planners.generators.DOMAINS`) may be passed by
name instead of its PDDL text: in the LLM+P setting the domain is given and only the
problem is written, so a caller need not copy the domain back.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any, Literal

from pydantic import Field

from reasonloop.planners.result import PlanResult, PlanStatus, ValidationReport, ValidationStatus
from reasonloop.planners.runner import SubprocessRunner
from reasonloop.planners.solve import Planner, PlannerConfig
from reasonloop.tools.base import Tool, ToolContext, tool
from reasonloop.trajectory.schema import ToolResult, ToolStatus

__all__ = [
    "PlannerSessions", "plan", "plan_tool_result", "planner_tools", "resolve_domain", "validate_plan",
    "validation_tool_result",
]

PlannerName = Literal["fast-downward", "pyperplan", "enhsp"]
_MAX_TOOL_TIMEOUT_S = 120.0
_TOOL_SLACK_S = 90.0
"""Extra time the tool wrapper allows beyond the planner's own limit (worker start-up)."""


class PlannerSessions:
    """Session factory handing every episode the same :class:`Planner` (started on first use).

    Planner calls carry no episode state, so forking an episode shares the planner and
    closing an episode leaves it running; :meth:`shutdown` stops it.
    """

    def __init__(self, config: PlannerConfig | None = None) -> None:
        self._config = config or PlannerConfig()
        self._planner: Planner | None = None
        self._lock = threading.Lock()

    def open(self) -> Planner:
        with self._lock:
            if self._planner is None:
                self._planner = Planner(self._config)
            return self._planner

    def fork(self, session: Any) -> Any:
        return session

    def close(self, session: Any) -> None:
        return None

    def shutdown(self) -> None:
        """Stop the shared planner worker (idempotent)."""
        with self._lock:
            planner, self._planner = self._planner, None
        if planner is not None:
            planner.close()


_PLAN_STATUS = {
    PlanStatus.SOLVED_OPTIMALLY: ToolStatus.OK,
    PlanStatus.SOLVED_SATISFICING: ToolStatus.OK,
    PlanStatus.UNSOLVABLE: ToolStatus.OK,
    PlanStatus.TIMEOUT: ToolStatus.TIMEOUT,
}
_VALIDATION_STATUS = {
    ValidationStatus.VALID: ToolStatus.OK,
    ValidationStatus.INVALID_PLAN: ToolStatus.OK,
    ValidationStatus.TIMEOUT: ToolStatus.TIMEOUT,
}


def plan_tool_result(result: PlanResult) -> ToolResult:
    """A plan result as a tool result: solved and unsolvable are answers (ok); the rest are errors."""
    status = _PLAN_STATUS.get(result.status, ToolStatus.ERROR)
    error = None if status is ToolStatus.OK else result.summary()
    return ToolResult(status=status, output=result.summary(), error=error, data=result.model_dump(mode="json"))


def validation_tool_result(report: ValidationReport) -> ToolResult:
    """A validation report as a tool result: valid and invalid plans are answers (ok)."""
    status = _VALIDATION_STATUS.get(report.status, ToolStatus.ERROR)
    output = f"{report.status.value}: {report.message}"
    return ToolResult(
        status=status,
        output=output,
        error=None if status is ToolStatus.OK else output,
        data=report.model_dump(mode="json"),
    )


def resolve_domain(domain: str) -> str | ToolResult:
    """``domain`` itself when it is PDDL text; the built-in domain it names; or an error result."""
    from reasonloop.planners.generators import DOMAINS

    text = domain.strip()
    if text.startswith("(") or not text:
        return domain
    found = DOMAINS.get(text.lower())
    if found is not None:
        return found
    message = (f"unknown domain name {text[:60]!r}: pass the PDDL text (define (domain NAME) ...) "
               f"or one of {sorted(DOMAINS)}")
    return ToolResult(status=ToolStatus.ERROR, output=message, error=message)


def _planner_for(ctx: ToolContext) -> tuple[Planner, bool]:
    """The session's planner, or a one-off one (to be closed) when there is no session."""
    if isinstance(ctx.session, Planner):
        return ctx.session, False
    return Planner(runner=SubprocessRunner()), True


def _solve(domain: str, problem: str, planner: str, timeout_s: float, ctx: ToolContext) -> ToolResult:
    resolved = resolve_domain(domain)
    if isinstance(resolved, ToolResult):
        return resolved
    domain = resolved
    runner, owned = _planner_for(ctx)
    try:
        return plan_tool_result(runner.solve(domain, problem, planner=planner, timeout_s=timeout_s))
    finally:
        if owned:
            runner.close()


def _validate(domain: str, problem: str, plan: str, ctx: ToolContext) -> ToolResult:
    resolved = resolve_domain(domain)
    if isinstance(resolved, ToolResult):
        return resolved
    domain = resolved
    runner, owned = _planner_for(ctx)
    try:
        return validation_tool_result(runner.validate(domain, problem, plan))
    finally:
        if owned:
            runner.close()


def _build(sessions: PlannerSessions | None) -> tuple[Tool, Tool]:
    @tool(name="plan", sessions=sessions, timeout_s=_MAX_TOOL_TIMEOUT_S + _TOOL_SLACK_S)
    def plan_(
        domain: str,
        problem: str,
        ctx: ToolContext,
        planner: PlannerName = "fast-downward",
        timeout_s: Annotated[float, Field(gt=0, le=_MAX_TOOL_TIMEOUT_S)] = 30.0,
    ) -> ToolResult:
        """Find a plan for a PDDL problem with a classical planner.

        Args:
            domain: The PDDL domain, starting with (define (domain NAME) ...), or the name of a
                built-in domain: blocksworld, gripper or logistics.
            problem: The PDDL problem, starting with (define (problem NAME) (:domain NAME) ...).
            planner: Which planner to run; fast-downward is the fastest.
            timeout_s: Seconds the planner may search.
        """
        return _solve(domain, problem, planner, timeout_s, ctx)

    @tool(name="validate_plan", sessions=sessions, timeout_s=_MAX_TOOL_TIMEOUT_S + _TOOL_SLACK_S)
    def validate_plan_(domain: str, problem: str, plan: str, ctx: ToolContext) -> ToolResult:
        """Check a plan against a PDDL domain and problem and explain the first failure.

        Args:
            domain: The PDDL domain, or the name of a built-in domain.
            problem: The PDDL problem.
            plan: The plan, one action per line, e.g. "(pick-up a)" or "1. pick up a".
        """
        return _validate(domain, problem, plan, ctx)

    return plan_, validate_plan_


def planner_tools(sessions: PlannerSessions | None = None) -> list[Tool]:
    """Build ``plan`` and ``validate_plan`` bound to ``sessions`` (a new factory when omitted).

    Call ``sessions.shutdown()`` when done to stop the shared worker (it also stops when
    this process exits).
    """
    return list(_build(sessions or PlannerSessions()))


plan, validate_plan = _build(None)
"""Stateless tools: each call outside a toolset session starts a one-off planner process."""
