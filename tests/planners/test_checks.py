"""Malformed PDDL gets a located, named, actionable message (no planner process needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonloop.planners.generators import BLOCKSWORLD_DOMAIN, blocksworld, gripper
from reasonloop.planners.parse import CheckedTask, check_task, load_pddl
from reasonloop.planners.result import PddlIssue

D = BLOCKSWORLD_DOMAIN
P = """(define (problem p) (:domain blocksworld)
  (:objects a b)
  (:init (arm-empty) (on-table a) (on-table b) (clear a) (clear b))
  (:goal (on a b)))
"""

# name -> (domain, problem, file, line, symbol, words the message must contain)
MALFORMED: dict[str, tuple[str, str, str, int | None, str | None, tuple[str, ...]]] = {
    "unbalanced-missing": (D, P.rstrip()[:-1], "problem", 1, "(", ("unbalanced", "never closed")),
    "unbalanced-extra": (D, P + ")", "problem", 5, ")", ("no matching",)),
    "undefined-predicate": (
        D,
        P.replace("(on a b)", "(onn a b)"),
        "problem",
        4,
        "onn",
        ("undefined predicate", "on/2"),
    ),
    "undefined-object": (D, P.replace("(on a b)", "(on a c)"), "problem", 4, "c", ("undefined object", "a, b")),
    "undefined-type": (
        D,
        P.replace("(:objects a b)", "(:objects a b - block)"),
        "problem",
        2,
        "block",
        ("undefined type",),
    ),
    "arity-mismatch": (D, P.replace("(on a b)", "(on a)"), "problem", 4, "on", ("takes 2", "gives 1")),
    "missing-goal": (D, P.replace("  (:goal (on a b)))", ")"), "problem", None, ":goal", ("no (:goal",)),
    "empty-problem": (D, "", "problem", 1, None, ("empty",)),
    "empty-domain": ("   \n", P, "domain", 1, None, ("empty",)),
    "garbage-bytes": (D, "\x00\xff\x13garbage", "problem", 1, "'\\x00'", ("control character",)),
    "other-domain": (
        D,
        P.replace("(:domain blocksworld)", "(:domain gripper)"),
        "problem",
        1,
        "gripper",
        ("for domain 'gripper'",),
    ),
    "huge-input": (D, P + " " * 1_000_001, "problem", None, None, ("limit",)),
    "comma-separated-args": (D, P.replace("(on a b)", "(on a, b)"), "problem", 4, "a,", ("not PDDL syntax",)),
    "domain-undefined-predicate": (
        D.replace("(holding ?ob))", "(holdin ?ob))", 1),
        P,
        "domain",
        11,
        "holdin",
        ("undefined predicate", "put-down"),
    ),
    "domain-undefined-variable": (
        D.replace("(holding ?ob))", "(holding ?x))", 1),
        P,
        "domain",
        11,
        "?x",
        ("undefined variable",),
    ),
    "unknown-section": (D, P.replace("(:objects a b)", "(:objets a b)"), "problem", 2, ":objets", ("unknown section",)),
    "not-a-define": (D, "(problem p)", "problem", 1, "problem", ("define",)),
    "too-deep": (D, "(" * 500 + ")" * 500, "problem", 1, None, ("nesting",)),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_is_located(case: str) -> None:
    domain, problem, file, line, symbol, words = MALFORMED[case]
    issues = check_task(domain, problem)
    assert isinstance(issues, list) and issues, f"{case} was accepted"
    issue = issues[0]
    assert issue.file == file
    assert issue.line == line
    assert issue.symbol == symbol
    for word in words:
        assert word in issue.message, (word, issue.message)


def test_at_least_ten_kinds_of_malformed_input() -> None:
    assert len(MALFORMED) >= 10


def test_valid_inputs_pass_and_collect_vocabulary() -> None:
    checked = check_task(D, P)
    assert isinstance(checked, CheckedTask)
    assert checked.vocab.name == "blocksworld"
    assert checked.vocab.actions["stack"] == [("?ob", "object"), ("?underob", "object")]
    assert set(checked.vocab.constants) == {"a", "b"}
    inst = gripper(3, 2, seed=1)
    typed = check_task(inst.domain, inst.problem)
    assert isinstance(typed, CheckedTask)
    assert typed.vocab.constants["ball3"] == "ball"


def test_strings_are_text_and_paths_are_files(tmp_path: Path) -> None:
    # A model-written string that looks like a path is PDDL text, never a file to open.
    assert load_pddl("/etc/passwd", "domain") == "/etc/passwd"
    inst = blocksworld(3)
    dom, prob = tmp_path / "d.pddl", tmp_path / "p.pddl"
    dom.write_text(inst.domain)
    prob.write_text(inst.problem)
    assert isinstance(check_task(dom, prob), CheckedTask)
    missing = load_pddl(tmp_path / "nope.pddl", "problem")
    assert isinstance(missing, PddlIssue) and "cannot read" in missing.message
    (tmp_path / "bin.pddl").write_bytes(b"\xff\xfe(define")
    binary = load_pddl(tmp_path / "bin.pddl", "problem")
    assert isinstance(binary, PddlIssue) and "not UTF-8" in binary.message
