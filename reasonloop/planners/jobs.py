"""Jobs executed inside the isolated planner process: JSON in, JSON out.

``run_job({"kind": "solve", ...})`` parses with unified-planning and calls the engine;
``run_job({"kind": "validate", ...})`` validates a plan. Both return the JSON form of a
:class:`~reasonloop.planners.result.PlanResult` or
:class:`~reasonloop.planners.result.ValidationReport`; neither raises on bad input.
"""

from __future__ import annotations

import errno
import gc
import mmap
import os
import time
import warnings
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from reasonloop.planners.engines import ENGINES
from reasonloop.planners.parse import parse_task
from reasonloop.planners.result import PlanResult, PlanStatus, Timings, ValidationReport, ValidationStatus

__all__ = ["ENGINE_MODULES", "JOBS", "run_job"]

_RESERVE_BYTES = 16 * 1024 * 1024
ENGINE_MODULES = tuple(spec.module for spec in ENGINES.values())

_UP_STATUS = {
    "SOLVED_SATISFICING": (PlanStatus.SOLVED_SATISFICING, ""),
    "SOLVED_OPTIMALLY": (PlanStatus.SOLVED_OPTIMALLY, ""),
    "INTERMEDIATE": (PlanStatus.SOLVED_SATISFICING, "the engine stopped with an intermediate plan"),
    "UNSOLVABLE_PROVEN": (
        PlanStatus.UNSOLVABLE,
        "the planner proved that no plan reaches the goal from the initial state",
    ),
    "UNSOLVABLE_INCOMPLETELY": (
        PlanStatus.UNSOLVABLE,
        "the planner's search ended without finding a plan (its search is incomplete, so this is strong "
        "evidence, not a proof, that the goal is unreachable)",
    ),
    "TIMEOUT": (PlanStatus.TIMEOUT, "the planner ran out of time"),
    "MEMOUT": (PlanStatus.MEMORY_OUT, "the planner ran out of memory (the task is too large after grounding)"),
    "INTERNAL_ERROR": (PlanStatus.ENGINE_ERROR, "the planner failed"),
    "UNSUPPORTED_PROBLEM": (PlanStatus.INVALID_INPUT, "the planner does not support this kind of problem"),
}


def _action_text(instance: Any) -> str:
    return "(" + " ".join([instance.action.name, *(str(p) for p in instance.actual_parameters)]) + ")"


def _log_tail(result: Any, limit: int = 600) -> str:
    text = " ".join(m.message for m in (result.log_messages or []) if m.message).strip()
    return text[-limit:]


def _solve(job: dict[str, Any]) -> dict[str, Any]:
    from unified_planning.shortcuts import OneshotPlanner, get_environment

    start = time.perf_counter()
    engine = str(job["engine"])
    task = parse_task(job["domain"], job["problem"], max_chars=int(job["max_chars"]))
    if isinstance(task, list):
        message = "; ".join(i.describe() for i in task)
        total = time.perf_counter() - start
        return PlanResult(
            status=PlanStatus.INVALID_INPUT, engine=engine, message=message, issues=task, timings=Timings(total_s=total)
        ).model_dump(mode="json")
    get_environment().credits_stream = None
    if job.get("java_options"):
        os.environ["JAVA_TOOL_OPTIONS"] = str(job["java_options"])
    solve_start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with OneshotPlanner(name=job["up_engine"]) as planner:
            if not planner.supports(task.problem.kind):
                features = ", ".join(sorted(task.problem.kind.features))
                return PlanResult(
                    status=PlanStatus.INVALID_INPUT,
                    engine=engine,
                    message=f"{engine} does not support this problem (it uses: {features}); try another planner",
                ).model_dump(mode="json")
            result = planner.solve(task.problem, timeout=float(job["timeout_s"]))
    end = time.perf_counter()
    status, message = _UP_STATUS.get(
        result.status.name, (PlanStatus.ENGINE_ERROR, f"unknown status {result.status.name}")
    )
    if status is PlanStatus.SOLVED_SATISFICING and job["mode"] == "optimal":
        status, message = PlanStatus.SOLVED_OPTIMALLY, f"optimal: found by the optimal configuration {job['up_engine']}"
    if status is PlanStatus.ENGINE_ERROR:
        message = f"{message}: {_log_tail(result)}"
    plan = [_action_text(a) for a in result.plan.actions] if status.solved and result.plan is not None else []
    timings = Timings(parse_s=task.parse_s, solve_s=end - solve_start, total_s=end - start)
    return PlanResult(status=status, plan=plan, engine=engine, timings=timings, message=message).model_dump(mode="json")


def _validate(job: dict[str, Any]) -> dict[str, Any]:
    from reasonloop.planners.validate import validate_in_process

    report: ValidationReport = validate_in_process(job["domain"], job["problem"], job["plan"])
    return report.model_dump(mode="json")


JOBS: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]] = MappingProxyType(
    {"solve": _solve, "validate": _validate}
)


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job; memory exhaustion becomes a ``memory_out`` result."""
    kind = job.get("kind")
    if kind not in JOBS:
        raise ValueError(f"unknown job kind {kind!r}; valid: {', '.join(JOBS)}")
    # Address space held back for reporting: a job that exhausts RLIMIT_AS often cannot
    # allocate even its result afterwards (the allocator keeps its arenas), so this
    # mmapped block is released first. The result is built after the except block:
    # while the exception is alive its traceback keeps the exhausted memory reachable.
    reserve = mmap.mmap(-1, _RESERVE_BYTES)  # address space only: untouched pages cost nothing
    try:
        return JOBS[str(kind)](job)
    except MemoryError:
        failure = ("memory_out", "ran out of memory (the task is too large after grounding)")
    except RecursionError:
        failure = ("invalid_input", "the task is nested too deeply to process")
    except OSError as exc:
        if exc.errno != errno.ENOMEM:
            raise
        failure = ("memory_out", "ran out of memory (the task is too large after grounding)")
    except Exception as exc:  # an engine's own crash is reported, not raised across the boundary
        failure = ("engine_error", f"failed with {type(exc).__name__}: {str(exc)[:500]}")
    reserve.close()
    gc.collect()
    return _failed(job, *failure)


def _failed(job: dict[str, Any], status: str, what: str) -> dict[str, Any]:
    if job.get("kind") == "validate":
        return ValidationReport(status=ValidationStatus(status), message=f"validation {what}").model_dump(mode="json")
    engine = str(job.get("engine", ""))
    return PlanResult(status=PlanStatus(status), engine=engine, message=f"{engine or 'the planner'} {what}").model_dump(
        mode="json"
    )
