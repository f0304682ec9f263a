"""What ``reasonloop plan`` runs: each command returns (exit status, JSON text) and never raises on bad input.

    reasonloop plan DOMAIN PROBLEM [--planner fast-downward|pyperplan|enhsp] [--timeout S] [--optimal]
    reasonloop plan --validate PLANFILE DOMAIN PROBLEM [--timeout S]

Exit status 0: solved / valid; 1: a definitive negative answer (unsolvable, invalid
plan); 2: invalid input; 3: timeout, memory-out or engine error.
"""

from __future__ import annotations

from pathlib import Path

from reasonloop.planners.engines import PlannerMode
from reasonloop.planners.result import PlanStatus, ValidationStatus
from reasonloop.planners.runner import SubprocessRunner
from reasonloop.planners.solve import Planner, PlannerConfig

__all__ = ["plan_command", "validate_command"]

_PLAN_EXIT = {
    PlanStatus.SOLVED_OPTIMALLY: 0,
    PlanStatus.SOLVED_SATISFICING: 0,
    PlanStatus.UNSOLVABLE: 1,
    PlanStatus.INVALID_INPUT: 2,
}
_VALIDATION_EXIT = {ValidationStatus.VALID: 0, ValidationStatus.INVALID_PLAN: 1, ValidationStatus.INVALID_INPUT: 2}
_MAX_PLAN_BYTES = 1_000_000


def plan_command(
    domain: str | Path,
    problem: str | Path,
    *,
    planner: str = "fast-downward",
    timeout_s: float = 30.0,
    optimal: bool = False,
) -> tuple[int, str]:
    """Solve the files ``domain`` and ``problem``; returns (exit status, the PlanResult as JSON)."""
    mode = PlannerMode.OPTIMAL if optimal else PlannerMode.SATISFICING
    # One call: a fresh interpreter is as fast as starting a fork server and cheaper to clean up.
    with Planner(PlannerConfig(timeout_s=max(timeout_s, 1e-3)), runner=SubprocessRunner()) as p:
        result = p.solve(Path(domain), Path(problem), planner=planner, mode=mode, timeout_s=timeout_s)
    return _PLAN_EXIT.get(result.status, 3), result.model_dump_json(indent=2)


def validate_command(
    plan_file: str | Path, domain: str | Path, problem: str | Path, *, timeout_s: float = 30.0
) -> tuple[int, str]:
    """Validate the plan in ``plan_file``; returns (exit status, the ValidationReport as JSON)."""
    from reasonloop.planners.result import ValidationReport

    path = Path(plan_file)
    try:
        if path.stat().st_size > _MAX_PLAN_BYTES:
            raise ValueError(f"{path} is larger than {_MAX_PLAN_BYTES:,} bytes")
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        report = ValidationReport(status=ValidationStatus.INVALID_INPUT, message=f"cannot read the plan file: {exc}")
        return 2, report.model_dump_json(indent=2)
    with Planner(PlannerConfig(timeout_s=max(timeout_s, 1e-3)), runner=SubprocessRunner()) as p:
        report = p.validate(Path(domain), Path(problem), text, timeout_s=timeout_s)
    return _VALIDATION_EXIT.get(report.status, 3), report.model_dump_json(indent=2)
