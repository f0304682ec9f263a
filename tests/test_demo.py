"""The demo's pieces: plans, the ARPO target choice, the plots (the end-to-end run is in test_cli)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonloop.demo import FULL, QUICK, DemoPlan, _plot, pick_arpo_suite
from reasonloop.recipes.tiny import TINY_SUITES


def test_plans_cover_every_suite() -> None:
    assert set(FULL.tasks) == set(QUICK.tasks) == set(TINY_SUITES)
    assert sum(QUICK.tasks.values()) < sum(FULL.tasks.values()) and QUICK.arpo_steps <= FULL.arpo_steps
    with pytest.raises(ValueError):
        DemoPlan(tasks={"arith": 0}, arpo_steps=1, group_size=2)
    with pytest.raises(ValueError):
        DemoPlan(tasks={"arith": 1}, arpo_steps=1, group_size=1)
    with pytest.raises(ValueError, match="max_draws"):
        DemoPlan(tasks={"arith": 1}, arpo_steps=1, group_size=2, max_draws=0)


def test_arpo_targets_the_weakest_suite_that_still_gets_reward() -> None:
    assert pick_arpo_suite({"arith": 1.0, "lookup": 0.5, "logic": 0.0, "planning": 0.25}) == "planning"
    assert pick_arpo_suite({"arith": 1.0, "logic": 0.0, "planning": 0.0}) == "logic"  # no signal anywhere: weakest
    assert pick_arpo_suite({"arith": 1.0, "lookup": 1.0}) == "arith"


def test_plots_are_written(tmp_path: Path) -> None:
    tables = {"no tools": {"arith": 0.0, "lookup": 0.1}, "tools": {"arith": 0.9, "lookup": 0.6}}
    paths = _plot(tmp_path, tables, [{"step": 1, "reward_mean": 0.2}, {"step": 2, "reward_mean": 0.5}])
    assert [p.name for p in paths] == ["accuracy.png", "arpo_reward.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
    assert [p.name for p in _plot(tmp_path / "b", tables, [])] == ["accuracy.png"]
