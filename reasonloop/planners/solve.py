"""Solve and validate PDDL tasks in isolated, limited processes.

    with Planner() as planner:
        result = planner.solve(domain_text, problem_text)          # Fast Downward, lama-first
        report = planner.validate(domain_text, problem_text, "1. pick up a\\n2. stack a on b")

Every call goes through a :class:`~reasonloop.planners.runner.JobRunner`: light checks
run here (they are cheap and give located messages), then parsing, grounding and search
run in a child process with memory, CPU and wall-clock limits. Outcomes are values:
nothing here raises on bad input.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from reasonloop.errors import ConfigError, UnknownNameError
from reasonloop.planners._worker import EXIT_MEMORY
from reasonloop.planners.engines import ENGINES, PlannerMode, java_options
from reasonloop.planners.parse import CheckedTask, PddlSource, check_task
from reasonloop.planners.result import PlanResult, PlanStatus, Timings, ValidationReport, ValidationStatus
from reasonloop.planners.runner import ForkServerRunner, JobOutcome, JobRunner, Limits
from reasonloop.planners.sexpr import DEFAULT_MAX_CHARS

__all__ = ["Planner", "PlannerConfig", "solve_task"]

_SIGKILL = -9
_SIGXCPU = -24
_MEMORY_MARKERS = ("MemoryError", "memory allocation of", "std::bad_alloc", "Cannot allocate memory", "out of memory")


@dataclass(frozen=True, kw_only=True)
class PlannerConfig:
    """Defaults of a :class:`Planner`; each call may override planner, mode and timeout."""

    planner: str = "fast-downward"
    """Engine name (see :data:`reasonloop.planners.engines.ENGINES`)."""
    mode: PlannerMode = PlannerMode.SATISFICING
    """Satisficing (any plan, fast) or optimal (shortest plan)."""
    timeout_s: float = 30.0
    """Time the engine is given; the process tree is killed ``grace_s`` later."""
    grace_s: float = 2.0
    """Extra wall-clock seconds for the engine to report its own timeout before the kill."""
    memory_mb: int = 2048
    """Address-space limit per planner process, in MiB."""
    max_chars: int = DEFAULT_MAX_CHARS
    """Longest domain or problem text accepted."""

    def __post_init__(self) -> None:
        if self.planner not in ENGINES:
            raise UnknownNameError("planner", self.planner, list(ENGINES))
        if self.timeout_s <= 0 or self.grace_s < 0:
            raise ConfigError("PlannerConfig.timeout_s must be > 0 and grace_s >= 0")
        if self.memory_mb < 64 or self.max_chars < 1:
            raise ConfigError("PlannerConfig.memory_mb must be >= 64 and max_chars >= 1")

    def limits(self, timeout_s: float) -> Limits:
        return Limits(
            wall_s=timeout_s + self.grace_s, memory_mb=self.memory_mb, cpu_s=math.ceil(timeout_s + self.grace_s) + 3
        )


class Planner:
    """Solves and validates through a runner (a warm fork server unless one is given).

    Args:
        config: Defaults for every call.
        runner: Where jobs run; the planner closes a runner it created, not one it was given.
    """

    def __init__(self, config: PlannerConfig | None = None, *, runner: JobRunner | None = None) -> None:
        self.config = config or PlannerConfig()
        self._owns_runner = runner is None
        self.runner: JobRunner = runner if runner is not None else ForkServerRunner()

    def warm_up(self) -> None:
        """Start the runner's worker now (the first call otherwise pays its start-up, about 1-5 s)."""
        self.runner.warm()

    def close(self) -> None:
        if self._owns_runner:
            self.runner.close()

    def __enter__(self) -> Planner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _refuse(self, planner: str, mode: PlannerMode) -> PlanResult | None:
        if planner not in ENGINES:
            valid = ", ".join(ENGINES)
            return PlanResult(
                status=PlanStatus.INVALID_INPUT, engine=planner, message=f"unknown planner {planner!r}; valid: {valid}"
            )
        spec = ENGINES[planner]
        reason = spec.unavailable_reason()
        if reason is not None:
            return PlanResult(status=PlanStatus.ENGINE_ERROR, engine=planner, message=reason)
        if spec.up_name(mode) is None:
            return PlanResult(
                status=PlanStatus.INVALID_INPUT, engine=planner, message=f"{planner} has no {mode.value} mode"
            )
        return None

    def _job(self, checked: CheckedTask, planner: str, mode: PlannerMode, timeout_s: float) -> dict[str, Any]:
        spec = ENGINES[planner]
        return {
            "kind": "solve",
            "engine": planner,
            "up_engine": spec.up_name(mode),
            "mode": mode.value,
            "timeout_s": timeout_s,
            "max_chars": self.config.max_chars,
            "java_options": java_options(self.config.memory_mb) if spec.needs_java else "",
            "domain": checked.domain,
            "problem": checked.problem,
        }

    def solve(
        self,
        domain: PddlSource,
        problem: PddlSource,
        *,
        planner: str | None = None,
        mode: PlannerMode | str | None = None,
        timeout_s: float | None = None,
    ) -> PlanResult:
        """Find a plan.

        Args:
            domain: Domain text (``str``) or file (``Path``).
            problem: Problem text or file.
            planner: Engine name; defaults to the config's.
            mode: ``"satisficing"`` or ``"optimal"``; defaults to the config's.
            timeout_s: Engine time limit; defaults to the config's.

        Returns:
            A :class:`PlanResult`; its ``timings.total_s`` is measured here and includes
            the process overhead.
        """
        return self.solve_portfolio(
            domain, problem, planners=[planner or self.config.planner], mode=mode, timeout_s=timeout_s
        )

    def solve_portfolio(
        self,
        domain: PddlSource,
        problem: PddlSource,
        *,
        planners: Sequence[str] = ("fast-downward", "pyperplan"),
        mode: PlannerMode | str | None = None,
        timeout_s: float | None = None,
    ) -> PlanResult:
        """Run several engines at once; the first definitive answer wins and the others are killed.

        A definitive answer is a plan, a proof of unsolvability or invalid input; when no
        engine gives one, the first engine's outcome is returned.
        """
        start = time.perf_counter()
        budget = timeout_s if timeout_s is not None else self.config.timeout_s
        if mode is not None and mode not in PlannerMode.__members__.values():
            valid = ", ".join(m.value for m in PlannerMode)
            return PlanResult(status=PlanStatus.INVALID_INPUT, message=f"unknown mode {mode!r}; valid: {valid}")
        run_mode = PlannerMode(mode) if mode is not None else self.config.mode
        if budget <= 0 or not planners:
            return PlanResult(
                status=PlanStatus.INVALID_INPUT, message="timeout_s must be > 0 and at least one planner given"
            )
        verdicts = [(name, self._refuse(name, run_mode)) for name in planners]
        refused = [r for _, r in verdicts if r is not None]
        usable = [name for name, r in verdicts if r is None]
        if not usable:
            return _with_total(refused[0], start)
        checked = check_task(domain, problem, max_chars=self.config.max_chars)
        if isinstance(checked, list):
            message = "; ".join(i.describe() for i in checked)
            invalid = PlanResult(status=PlanStatus.INVALID_INPUT, engine=usable[0], message=message, issues=checked)
            return _with_total(invalid, start)
        limits = self.config.limits(budget)
        handles = [(name, self.runner.start(self._job(checked, name, run_mode, budget), limits)) for name in usable]
        results = _first_definitive(handles, budget)
        best = next((r for r in results if r.status.definitive), results[0])
        return _with_total(best, start)

    def validate(
        self, domain: PddlSource, problem: PddlSource, plan: str | Sequence[str], *, timeout_s: float | None = None
    ) -> ValidationReport:
        """Check a plan (text in any usual format, or a list of steps) and explain a failure."""
        start = time.perf_counter()
        checked = check_task(domain, problem, max_chars=self.config.max_chars)
        if isinstance(checked, list):
            message = "; ".join(i.describe() for i in checked)
            return ValidationReport(
                status=ValidationStatus.INVALID_INPUT,
                message=message,
                issues=checked,
                timings=Timings(total_s=time.perf_counter() - start),
            )
        steps = plan if isinstance(plan, str) else [str(s) for s in plan]
        if sum(map(len, steps)) > self.config.max_chars:
            return ValidationReport(
                status=ValidationStatus.INVALID_INPUT,
                message=f"the plan is longer than {self.config.max_chars:,} characters",
            )
        job = {"kind": "validate", "domain": checked.domain, "problem": checked.problem, "plan": steps}
        budget = timeout_s if timeout_s is not None else self.config.timeout_s
        if budget <= 0:
            return ValidationReport(status=ValidationStatus.INVALID_INPUT, message="timeout_s must be > 0")
        outcome = self.runner.start(job, self.config.limits(budget)).outcome()
        report = _report_from(outcome, budget)
        timings = report.timings.model_copy(update={"total_s": time.perf_counter() - start})
        return report.model_copy(update={"timings": timings})


def _first_definitive(handles: list[tuple[str, Any]], budget: float) -> list[PlanResult]:
    """Wait for the handles; once one is definitive, kill the rest. Results in completion order."""
    if len(handles) == 1:
        name, handle = handles[0]
        return [_result_from(handle.outcome(), name, budget)]
    results: list[PlanResult] = []
    with ThreadPoolExecutor(max_workers=len(handles)) as pool:
        futures: dict[Future[JobOutcome], tuple[str, Any]] = {pool.submit(h.outcome): (n, h) for n, h in handles}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                name, _ = futures[fut]
                results.append(_result_from(fut.result(), name, budget))
            if any(r.status.definitive for r in results):
                for fut in pending:
                    futures[fut][1].kill()
    return results


def _with_total(result: PlanResult, start: float) -> PlanResult:
    timings = result.timings.model_copy(update={"total_s": time.perf_counter() - start})
    return result.model_copy(update={"timings": timings})


def _failure(outcome: JobOutcome, budget: float) -> tuple[str, str]:
    """(status value, message) for a job that wrote no result."""
    if outcome.cancelled:
        return "engine_error", "cancelled: another engine answered first"
    if outcome.timed_out or outcome.exit_code == _SIGXCPU:
        return "timeout", f"did not finish within {budget:g} s; the planner processes were killed"
    if outcome.exit_code in (_SIGKILL, EXIT_MEMORY) or any(m in outcome.stderr_tail for m in _MEMORY_MARKERS):
        return "memory_out", "the planner process ran out of memory and was killed"
    tail = outcome.stderr_tail.strip().splitlines()[-3:]
    return "engine_error", f"the planner process exited with code {outcome.exit_code}: {' | '.join(tail)}"


def _result_from(outcome: JobOutcome, engine: str, budget: float) -> PlanResult:
    if outcome.result is not None and not outcome.cancelled:
        try:
            return PlanResult.model_validate(outcome.result)
        except ValueError as exc:
            return PlanResult(
                status=PlanStatus.ENGINE_ERROR,
                engine=engine,
                message=f"malformed result from the planner process: {exc}",
            )
    status, message = _failure(outcome, budget)
    return PlanResult(
        status=PlanStatus(status), engine=engine, message=message, timings=Timings(total_s=outcome.wall_s)
    )


def _report_from(outcome: JobOutcome, budget: float) -> ValidationReport:
    if outcome.result is not None:
        try:
            return ValidationReport.model_validate(outcome.result)
        except ValueError as exc:
            return ValidationReport(
                status=ValidationStatus.ENGINE_ERROR, message=f"malformed result from the validator process: {exc}"
            )
    status, message = _failure(outcome, budget)
    return ValidationReport(status=ValidationStatus(status), message=message.replace("planner", "validator"))


def solve_task(
    domain: PddlSource,
    problem: PddlSource,
    *,
    planner: str = "fast-downward",
    mode: PlannerMode | str = PlannerMode.SATISFICING,
    timeout_s: float = 30.0,
) -> PlanResult:
    """One-off solve with a fresh runner (about 1 s of start-up); reuse a :class:`Planner` for many calls."""
    with Planner(PlannerConfig(timeout_s=timeout_s)) as p:
        return p.solve(domain, problem, planner=planner, mode=mode)
