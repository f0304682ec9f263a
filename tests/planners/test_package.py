"""The package's public surface, and that importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import reasonloop.planners as planners


def test_exported_members() -> None:
    assert planners.__all__ == sorted(
        [
            "ActionCall",
            "CheckedTask",
            "ENGINES",
            "EngineSpec",
            "ForkServerRunner",
            "GENERATORS",
            "JobRunner",
            "Limits",
            "ParsedTask",
            "PddlIssue",
            "PlanResult",
            "PlanStatus",
            "Planner",
            "PlannerConfig",
            "PlannerMode",
            "PlannerSessions",
            "PlanningInstance",
            "SubprocessRunner",
            "Timings",
            "ValidationReport",
            "ValidationStatus",
            "check_task",
            "generate",
            "parse_task",
            "plan",
            "planner_tools",
            "read_plan",
            "render_plan",
            "render_state",
            "solve_task",
            "validate_in_process",
            "validate_plan",
        ]
    )
    for name in planners.__all__:
        assert getattr(planners, name) is not None


def test_import_does_not_load_unified_planning() -> None:
    code = (
        "import sys, reasonloop.planners as p; p.Planner; p.generate; p.plan; p.check_task; "
        "heavy = [m for m in ('unified_planning', 'torch', 'z3', 'litellm') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_solving_keeps_unified_planning_out_of_the_calling_process() -> None:
    code = (
        "import sys\n"
        "from reasonloop.planners import Planner, generate\n"
        "t = generate('blocksworld', n_blocks=3)\n"
        "with Planner() as p:\n"
        "    r = p.solve(t.domain, t.problem)\n"
        "    v = p.validate(t.domain, t.problem, r.plan)\n"
        "assert r.solved and v.valid, (r, v)\n"
        "sys.exit(1 if 'unified_planning' in sys.modules else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
