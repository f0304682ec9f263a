"""The functions behind `reasonloop plan`: JSON out, exit status by outcome."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasonloop.planners.commands import plan_command, validate_command
from reasonloop.planners.generators import blocksworld


@pytest.mark.slow  # three fresh interpreters, as the command line starts them
def test_plan_then_validate_files(tmp_path: Path) -> None:
    inst = blocksworld(4, seed=3)
    dom, prob = tmp_path / "domain.pddl", tmp_path / "problem.pddl"
    dom.write_text(inst.domain)
    prob.write_text(inst.problem)
    code, text = plan_command(dom, prob, timeout_s=20)
    result = json.loads(text)
    assert code == 0 and result["status"] == "solved_satisficing" and result["timings"]["total_s"] > 0
    plan_file = tmp_path / "plan.txt"
    plan_file.write_text("\n".join(result["plan"]))
    code, text = validate_command(plan_file, dom, prob)
    assert code == 0 and json.loads(text)["status"] == "valid"
    plan_file.write_text("\n".join(result["plan"][1:]))
    code, text = validate_command(plan_file, dom, prob)
    assert code == 1 and json.loads(text)["status"] == "invalid_plan"


def test_missing_files_are_invalid_input(tmp_path: Path) -> None:
    code, text = plan_command(tmp_path / "nope.pddl", tmp_path / "nope2.pddl")
    assert code == 2 and "cannot read" in json.loads(text)["message"]
    code, text = validate_command(tmp_path / "plan.txt", tmp_path / "d", tmp_path / "p")
    assert code == 2 and "cannot read the plan file" in json.loads(text)["message"]
