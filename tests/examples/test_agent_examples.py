"""examples/agent_*.py run offline and print the episodes they recorded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str) -> list[str]:
    done = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=180,
                          check=False, cwd=EXAMPLES.parent)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_pal_example_repairs_the_program() -> None:
    lines = run_example("agent_pal.py")
    assert lines[0] == "task pens: finished, answer '21'"
    assert "python (error): NameError: name 'pack_size' is not defined" in lines[2]
    assert lines[3].endswith("verdict: rejected (attempt 1)") and lines[-1].endswith("verdict: accepted (attempt 2)")


def test_verify_example_repairs_the_script() -> None:
    lines = run_example("agent_verify.py")
    assert lines[0] == "task talks: finished, answer 'cy=1, ada=2, bob=3'"
    assert "never closed" in lines[2] and lines[5] == "  4 z3: sat"


@pytest.mark.timeout(240)
def test_planning_example_repairs_the_problem_and_the_plan() -> None:
    lines = run_example("agent_planning.py")
    assert lines[0] == "llm+p: finished, answer '(pick-up b3)\\n(stack b3 b2)'"
    assert "undefined object 'b4'" in lines[2] and "valid: the plan is valid (2 steps)" in lines[6]
    verify = lines.index("plan-verify: finished, answer '(pick-up b3)\\n(stack b3 b2)'")
    assert "(holding b3) are false" in lines[verify + 2]


def test_search_example_makes_two_hops() -> None:
    lines = run_example("agent_search.py")
    assert lines == [
        "task eiffel: finished, answer 'Dijon'",
        "  query 'Eiffel Tower built by company' -> eiffel-tower, gustave-eiffel",
        "  query 'Gustave Eiffel born' -> gustave-eiffel, eiffel-tower",
    ]
