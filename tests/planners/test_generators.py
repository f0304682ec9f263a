"""Generators are seeded, sized, well-formed, and describe the task they encode."""

from __future__ import annotations

import pytest

from reasonloop.errors import ConfigError, UnknownNameError
from reasonloop.planners.generators import GENERATORS, generate, goal_atoms
from reasonloop.planners.parse import CheckedTask, check_task
from reasonloop.planners.render import render_state

SIZES = {
    "blocksworld": [{"n_blocks": 1}, {"n_blocks": 7}, {"n_blocks": 20}],
    "gripper": [{"n_balls": 1, "n_rooms": 2}, {"n_balls": 6, "n_rooms": 4}],
    "logistics": [
        {"n_cities": 1, "n_packages": 1},
        {"n_cities": 3, "n_packages": 5, "locations_per_city": 3, "n_airplanes": 2},
    ],
}


@pytest.mark.parametrize("domain", sorted(GENERATORS))
def test_same_seed_same_instance_and_seeds_differ(domain: str) -> None:
    sizes = SIZES[domain][-1]
    a, b = generate(domain, seed=7, **sizes), generate(domain, seed=7, **sizes)
    assert a == b
    others = {generate(domain, seed=s, **sizes).problem for s in range(5)}
    assert len(others) == 5


@pytest.mark.parametrize(("domain", "sizes"), [(d, s) for d, ss in SIZES.items() for s in ss])
def test_instances_pass_the_checks_and_have_the_asked_size(domain: str, sizes: dict[str, int]) -> None:
    inst = generate(domain, seed=1, **sizes)
    checked = check_task(inst.domain, inst.problem)
    assert isinstance(checked, CheckedTask), checked
    assert inst.params == {**inst.params, **sizes}
    objects = checked.vocab.constants
    if domain == "blocksworld":
        assert len(objects) == sizes["n_blocks"]
    elif domain == "gripper":
        assert sum(t == "ball" for t in objects.values()) == sizes["n_balls"]
        assert sum(t == "room" for t in objects.values()) == sizes["n_rooms"]
    else:
        assert sum(t == "package" for t in objects.values()) == sizes["n_packages"]
        assert sum(t == "city" for t in objects.values()) == sizes["n_cities"]


@pytest.mark.parametrize("domain", sorted(GENERATORS))
def test_description_states_the_goal(domain: str) -> None:
    inst = generate(domain, seed=2)
    goals = goal_atoms(inst)
    assert goals
    assert render_state(goals, inst.fact_templates) in inst.description
    assert inst.description.startswith(("There are", "A robot", "Cities"))


def test_bad_names_and_sizes() -> None:
    with pytest.raises(UnknownNameError, match="blocksworld, gripper, logistics"):
        generate("sokoban")
    with pytest.raises(ConfigError):
        generate("blocksworld", n_blocks=0)
    with pytest.raises(ConfigError):
        generate("gripper", n_rooms=1)
