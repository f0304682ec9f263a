"""Seeded instance generators: blocksworld, gripper and logistics.

Each generator returns a :class:`PlanningInstance`: the domain and problem in PDDL, a
natural-language description of the same task (what an LLM+P agent starts from), and
phrase templates that :func:`reasonloop.planners.render.render_plan` uses and
:func:`reasonloop.planners.render.read_plan` reads back. The same seed and sizes always
give the same instance.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from reasonloop.errors import ConfigError, UnknownNameError
from reasonloop.planners.render import render_state
from reasonloop.planners.sexpr import Atom, SList, read_sexpr

__all__ = ["DOMAINS", "GENERATORS", "PlanningInstance", "blocksworld", "generate", "goal_atoms", "gripper", "logistics"]


@dataclass(frozen=True, kw_only=True)
class PlanningInstance:
    """One generated task."""

    domain_name: str
    """``blocksworld``, ``gripper`` or ``logistics``."""
    name: str
    """Problem name (encodes sizes and seed)."""
    domain: str
    """Domain PDDL."""
    problem: str
    """Problem PDDL."""
    description: str
    """The task in English: objects, initial state, goal."""
    seed: int
    params: dict[str, int] = field(default_factory=dict)
    """Size parameters used."""
    action_templates: dict[str, str] = field(default_factory=dict)
    """Action -> phrase with ``{0}``, ``{1}``... in argument order."""
    fact_templates: dict[str, str] = field(default_factory=dict)
    """Predicate -> phrase with ``{0}``, ``{1}``..."""


BLOCKSWORLD_DOMAIN = """(define (domain blocksworld)
  (:requirements :strips)
  (:predicates (clear ?x) (on-table ?x) (arm-empty) (holding ?x) (on ?x ?y))
  (:action pick-up
    :parameters (?ob)
    :precondition (and (clear ?ob) (on-table ?ob) (arm-empty))
    :effect (and (holding ?ob) (not (clear ?ob)) (not (on-table ?ob)) (not (arm-empty))))
  (:action put-down
    :parameters (?ob)
    :precondition (holding ?ob)
    :effect (and (clear ?ob) (arm-empty) (on-table ?ob) (not (holding ?ob))))
  (:action stack
    :parameters (?ob ?underob)
    :precondition (and (clear ?underob) (holding ?ob))
    :effect (and (arm-empty) (clear ?ob) (on ?ob ?underob) (not (clear ?underob)) (not (holding ?ob))))
  (:action unstack
    :parameters (?ob ?underob)
    :precondition (and (on ?ob ?underob) (clear ?ob) (arm-empty))
    :effect (and (holding ?ob) (clear ?underob) (not (on ?ob ?underob)) (not (clear ?ob)) (not (arm-empty)))))
"""

GRIPPER_DOMAIN = """(define (domain gripper)
  (:requirements :strips :typing)
  (:types room ball gripper)
  (:predicates (at-robby ?r - room) (at ?b - ball ?r - room) (free ?g - gripper) (carry ?b - ball ?g - gripper))
  (:action move
    :parameters (?from ?to - room)
    :precondition (at-robby ?from)
    :effect (and (at-robby ?to) (not (at-robby ?from))))
  (:action pick
    :parameters (?b - ball ?r - room ?g - gripper)
    :precondition (and (at ?b ?r) (at-robby ?r) (free ?g))
    :effect (and (carry ?b ?g) (not (at ?b ?r)) (not (free ?g))))
  (:action drop
    :parameters (?b - ball ?r - room ?g - gripper)
    :precondition (and (carry ?b ?g) (at-robby ?r))
    :effect (and (at ?b ?r) (free ?g) (not (carry ?b ?g)))))
"""

LOGISTICS_DOMAIN = """(define (domain logistics)
  (:requirements :strips :typing)
  (:types truck airplane - vehicle
          package vehicle - physobj
          airport location - place
          city place physobj - object)
  (:predicates (in-city ?loc - place ?city - city) (at ?obj - physobj ?loc - place) (in ?pkg - package ?veh - vehicle))
  (:action load-truck
    :parameters (?pkg - package ?truck - truck ?loc - place)
    :precondition (and (at ?truck ?loc) (at ?pkg ?loc))
    :effect (and (not (at ?pkg ?loc)) (in ?pkg ?truck)))
  (:action load-airplane
    :parameters (?pkg - package ?airplane - airplane ?loc - place)
    :precondition (and (at ?pkg ?loc) (at ?airplane ?loc))
    :effect (and (not (at ?pkg ?loc)) (in ?pkg ?airplane)))
  (:action unload-truck
    :parameters (?pkg - package ?truck - truck ?loc - place)
    :precondition (and (at ?truck ?loc) (in ?pkg ?truck))
    :effect (and (not (in ?pkg ?truck)) (at ?pkg ?loc)))
  (:action unload-airplane
    :parameters (?pkg - package ?airplane - airplane ?loc - place)
    :precondition (and (in ?pkg ?airplane) (at ?airplane ?loc))
    :effect (and (not (in ?pkg ?airplane)) (at ?pkg ?loc)))
  (:action drive-truck
    :parameters (?truck - truck ?loc-from - place ?loc-to - place ?city - city)
    :precondition (and (at ?truck ?loc-from) (in-city ?loc-from ?city) (in-city ?loc-to ?city))
    :effect (and (not (at ?truck ?loc-from)) (at ?truck ?loc-to)))
  (:action fly-airplane
    :parameters (?airplane - airplane ?loc-from - airport ?loc-to - airport)
    :precondition (at ?airplane ?loc-from)
    :effect (and (not (at ?airplane ?loc-from)) (at ?airplane ?loc-to))))
"""


def _problem(name: str, domain: str, objects: str, init: list[str], goal: list[str]) -> str:
    return (
        f"(define (problem {name})\n  (:domain {domain})\n  (:objects {objects})\n"
        f"  (:init\n    {' '.join(init)})\n  (:goal (and\n    {' '.join(goal)})))\n"
    )


def _describe(intro: str, init: list[str], goal: list[str], facts: Mapping[str, str]) -> str:
    return f"{intro}\nInitially: {render_state(init, facts)}\nGoal: {render_state(goal, facts)}"


def _towers(blocks: list[str], rng: random.Random) -> list[list[str]]:
    order = blocks[:]
    rng.shuffle(order)
    towers: list[list[str]] = []
    for block in order:
        if towers and rng.random() < 0.6:
            rng.choice(towers).append(block)
        else:
            towers.append([block])
    return towers


def _tower_facts(towers: list[list[str]]) -> list[str]:
    facts: list[str] = []
    for tower in towers:
        facts.append(f"(on-table {tower[0]})")
        facts += [f"(on {upper} {lower})" for lower, upper in pairwise(tower)]
        facts.append(f"(clear {tower[-1]})")
    return facts


def blocksworld(n_blocks: int = 5, seed: int = 0) -> PlanningInstance:
    """Random towers of ``n_blocks`` blocks to rearrange into other random towers."""
    if n_blocks < 1:
        raise ConfigError("blocksworld needs n_blocks >= 1")
    rng = random.Random(f"blocksworld-{n_blocks}-{seed}")
    blocks = [f"b{i}" for i in range(1, n_blocks + 1)]
    init = ["(arm-empty)", *_tower_facts(_towers(blocks, rng))]
    goal = [f for f in _tower_facts(_towers(blocks, rng)) if f.startswith("(on ")] or [f"(on-table {blocks[0]})"]
    name = f"blocksworld-{n_blocks}-s{seed}"
    facts = {
        "on": "{0} is on {1}",
        "on-table": "{0} is on the table",
        "clear": "{0} is clear",
        "arm-empty": "the hand is empty",
        "holding": "the hand holds {0}",
    }
    actions = {
        "pick-up": "pick up {0}",
        "put-down": "put down {0}",
        "stack": "stack {0} on {1}",
        "unstack": "unstack {0} from {1}",
    }
    intro = f"There are {n_blocks} blocks: {', '.join(blocks)}. One hand moves one clear block at a time."
    return PlanningInstance(
        domain_name="blocksworld",
        name=name,
        domain=BLOCKSWORLD_DOMAIN,
        problem=_problem(name, "blocksworld", " ".join(blocks), init, goal),
        description=_describe(intro, init, goal, facts),
        seed=seed,
        params={"n_blocks": n_blocks},
        action_templates=actions,
        fact_templates=facts,
    )


def gripper(n_balls: int = 4, n_rooms: int = 2, seed: int = 0) -> PlanningInstance:
    """A two-handed robot carries ``n_balls`` balls between ``n_rooms`` rooms."""
    if n_balls < 1 or n_rooms < 2:
        raise ConfigError("gripper needs n_balls >= 1 and n_rooms >= 2")
    rng = random.Random(f"gripper-{n_balls}-{n_rooms}-{seed}")
    rooms = [f"room{i}" for i in range(1, n_rooms + 1)]
    balls = [f"ball{i}" for i in range(1, n_balls + 1)]
    init = [f"(at-robby {rng.choice(rooms)})", "(free left)", "(free right)"]
    start = {b: rng.choice(rooms) for b in balls}
    init += [f"(at {b} {r})" for b, r in start.items()]
    goal = [f"(at {b} {rng.choice([r for r in rooms if r != start[b]])})" for b in balls]
    name = f"gripper-{n_balls}-{n_rooms}-s{seed}"
    objects = f"{' '.join(rooms)} - room {' '.join(balls)} - ball left right - gripper"
    facts = {
        "at-robby": "the robot is in {0}",
        "at": "{0} is in {1}",
        "free": "the {0} gripper is free",
        "carry": "{0} is held by the {1} gripper",
    }
    actions = {"move": "move from {0} to {1}", "pick": "pick {0} in {1} with {2}", "drop": "drop {0} in {1} with {2}"}
    intro = f"A robot with a left and a right gripper, rooms {', '.join(rooms)}, balls {', '.join(balls)}."
    return PlanningInstance(
        domain_name="gripper",
        name=name,
        domain=GRIPPER_DOMAIN,
        problem=_problem(name, "gripper", objects, init, goal),
        description=_describe(intro, init, goal, facts),
        seed=seed,
        params={"n_balls": n_balls, "n_rooms": n_rooms},
        action_templates=actions,
        fact_templates=facts,
    )


def logistics(
    n_cities: int = 2, n_packages: int = 2, locations_per_city: int = 2, n_airplanes: int = 1, seed: int = 0
) -> PlanningInstance:
    """Trucks inside cities and airplanes between airports deliver ``n_packages`` packages."""
    if n_cities < 1 or n_packages < 1 or locations_per_city < 1 or n_airplanes < 1:
        raise ConfigError("logistics needs n_cities, n_packages, locations_per_city and n_airplanes >= 1")
    rng = random.Random(f"logistics-{n_cities}-{n_packages}-{locations_per_city}-{n_airplanes}-{seed}")
    cities = [f"city{i}" for i in range(1, n_cities + 1)]
    airports = [f"airport{i}" for i in range(1, n_cities + 1)]
    locations = {c: [f"loc{i}-{j}" for j in range(1, locations_per_city + 1)] for i, c in enumerate(cities, 1)}
    trucks = [f"truck{i}" for i in range(1, n_cities + 1)]
    planes = [f"plane{i}" for i in range(1, n_airplanes + 1)]
    packages = [f"pkg{i}" for i in range(1, n_packages + 1)]
    places = {c: [a, *locations[c]] for c, a in zip(cities, airports, strict=True)}
    init = [f"(in-city {p} {c})" for c in cities for p in places[c]]
    init += [f"(at {t} {rng.choice(places[c])})" for t, c in zip(trucks, cities, strict=True)]
    init += [f"(at {p} {rng.choice(airports)})" for p in planes]
    all_places = [p for c in cities for p in places[c]]
    start = {p: rng.choice(all_places) for p in packages}
    init += [f"(at {p} {loc})" for p, loc in start.items()]
    goal = [f"(at {p} {rng.choice([q for q in all_places if q != start[p]])})" for p in packages]
    name = f"logistics-{n_cities}-{n_packages}-s{seed}"
    objects = (
        f"{' '.join(cities)} - city {' '.join(airports)} - airport {' '.join(loc for c in cities for loc in locations[c])} - location "
        f"{' '.join(trucks)} - truck {' '.join(planes)} - airplane {' '.join(packages)} - package"
    )
    facts = {"in-city": "{0} is in {1}", "at": "{0} is at {1}", "in": "{0} is inside {1}"}
    actions = {
        "load-truck": "load truck: {0} into {1} at {2}",
        "unload-truck": "unload truck: {0} from {1} at {2}",
        "load-airplane": "load airplane: {0} into {1} at {2}",
        "unload-airplane": "unload airplane: {0} from {1} at {2}",
        "drive-truck": "drive truck {0} from {1} to {2} in {3}",
        "fly-airplane": "fly airplane {0} from {1} to {2}",
    }
    intro = (
        f"Cities {', '.join(cities)}, each with one airport and one truck; airplanes {', '.join(planes)} "
        f"fly between airports; packages {', '.join(packages)} must be delivered."
    )
    return PlanningInstance(
        domain_name="logistics",
        name=name,
        domain=LOGISTICS_DOMAIN,
        problem=_problem(name, "logistics", objects, init, goal),
        description=_describe(intro, init, goal, facts),
        seed=seed,
        params={
            "n_cities": n_cities,
            "n_packages": n_packages,
            "locations_per_city": locations_per_city,
            "n_airplanes": n_airplanes,
        },
        action_templates=actions,
        fact_templates=facts,
    )


class _Generators(Mapping[str, Callable[..., PlanningInstance]]):
    def __init__(self, **fns: Callable[..., PlanningInstance]) -> None:
        self._fns = fns

    def __getitem__(self, name: str) -> Callable[..., PlanningInstance]:
        try:
            return self._fns[name]
        except KeyError:
            raise UnknownNameError("instance generator", name, list(self._fns)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._fns)

    def __len__(self) -> int:
        return len(self._fns)


GENERATORS: Mapping[str, Callable[..., PlanningInstance]] = _Generators(
    blocksworld=blocksworld, gripper=gripper, logistics=logistics
)
"""Generators by domain name."""

DOMAINS: Mapping[str, str] = {
    "blocksworld": BLOCKSWORLD_DOMAIN, "gripper": GRIPPER_DOMAIN, "logistics": LOGISTICS_DOMAIN,
}
"""The built-in domains' PDDL by name (the planner tools accept a name for the domain)."""


def generate(domain: str, seed: int = 0, **sizes: Any) -> PlanningInstance:
    """``generate("gripper", seed=3, n_balls=6)``; an unknown domain lists the valid ones."""
    return GENERATORS[domain](seed=seed, **sizes)


def goal_atoms(instance: PlanningInstance) -> list[str]:
    """The goal's atoms in PDDL syntax (the generators always write ``(:goal (and ...))``)."""
    form = read_sexpr(instance.problem, "problem")
    for section in form.items:
        if isinstance(section, SList) and section.head() == ":goal":
            body = section.items[1]
            atoms = body.items[1:] if isinstance(body, SList) and body.head() == "and" else [body]
            return [
                " ".join(a.text for a in n.items if isinstance(a, Atom)).join("()")
                for n in atoms
                if isinstance(n, SList)
            ]
    return []
