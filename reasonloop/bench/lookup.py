"""The ``lookup`` suite: questions over a generated corpus of fictional people, firms
and towns, answered with the ``search`` tool.

Every name, year and place is invented from a seeded random generator, so no answer
can be known without reading the corpus. The world comes in blocks of
:data:`PEOPLE_PER_BLOCK` people (plus their employers and towns); a suite of ``n``
tasks uses ``ceil(n / PEOPLE_PER_BLOCK)`` blocks, so task ``i`` is the same question
for any ``n`` that contains it.

``difficulty`` is the number of hops: 1 (a fact of one entity), 2 (a person's
employer's founding year, a birthplace's region...), 3 (a person's employer's
headquarters' region). The scripted expert makes one search per hop, querying the
entity it just learned about, and answers with the last fact.

:func:`lookup_tool_options` writes the corpus (JSONL) and its BM25 index into
``cache_dir/lookup-s{seed}-b{blocks}/`` once and reuses them.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonloop.bench.task import ExpertTurn, Task
from reasonloop.errors import ConfigError

__all__ = ["PEOPLE_PER_BLOCK", "World", "build_world", "lookup_tasks", "lookup_tool_options", "world_documents"]

PEOPLE_PER_BLOCK = 40
_ONSETS = ["b", "br", "d", "dr", "f", "g", "gr", "k", "kh", "l", "m", "n", "p", "q", "r", "s", "sk", "t", "th", "v", "z"]
_VOWELS = ["a", "e", "i", "o", "u", "ae", "ia", "ou", "y"]
_CODAS = ["", "", "n", "r", "s", "l", "th", "x", "m"]
_TRADES = ["glassblower", "cartographer", "beekeeper", "clockmaker", "ferryman", "tanner", "luthier", "weaver"]
_FIRMS = ["shipping firm", "brewery", "printing house", "foundry", "dye works", "rope maker", "mill"]


@dataclass(frozen=True, kw_only=True)
class World:
    """A generated world: facts per entity (all names unique across the world)."""

    people: dict[str, dict[str, Any]]
    """Person -> ``{"born_in", "born_year", "works_for", "trade"}``."""
    firms: dict[str, dict[str, Any]]
    """Firm -> ``{"founded", "based_in", "kind"}``."""
    towns: dict[str, dict[str, Any]]
    """Town -> ``{"region", "population"}``."""


def _word(rng: random.Random, syllables: int) -> str:
    text = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)) + rng.choice(_CODAS)
    return text.capitalize()


_MAKERS: dict[str, Callable[[random.Random], str]] = {
    "region": lambda r: _word(r, 3),
    "town": lambda r: _word(r, 2) + r.choice(["hold", "mere", "ford", "wick"]),
    "firm": lambda r: _word(r, 2) + r.choice(["lux", "cor", "var", "ton"]),
    "person": lambda r: f"{_word(r, 2)} {_word(r, 3)}",
}


def _fresh(rng: random.Random, used: set[str], kind: str) -> str:
    """A new name of ``kind`` no entity of the world has yet."""
    while True:
        name = _MAKERS[kind](rng)
        if name not in used:
            used.add(name)
            return name


def build_world(seed: int, blocks: int) -> World:
    """The world of ``blocks`` blocks (deterministic; block ``b`` is the same for any ``blocks > b``)."""
    people: dict[str, dict[str, Any]] = {}
    firms: dict[str, dict[str, Any]] = {}
    towns: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for block in range(blocks):
        rng = random.Random(f"lookup-world/{seed}/{block}")
        regions = [_fresh(rng, used, "region") for _ in range(4)]
        block_towns = [_fresh(rng, used, "town") for _ in range(12)]
        for town in block_towns:
            towns[town] = {"region": rng.choice(regions), "population": rng.randint(2, 90) * 1000 + rng.randint(0, 999)}
        block_firms = [_fresh(rng, used, "firm") for _ in range(15)]
        for firm in block_firms:
            firms[firm] = {"founded": rng.randint(1780, 1990), "based_in": rng.choice(block_towns), "kind": rng.choice(_FIRMS)}
        for _ in range(PEOPLE_PER_BLOCK):
            name = _fresh(rng, used, "person")
            people[name] = {"born_in": rng.choice(block_towns), "born_year": rng.randint(1920, 2004),
                            "works_for": rng.choice(block_firms), "trade": rng.choice(_TRADES)}  # fmt: skip
    return World(people=people, firms=firms, towns=towns)


def world_documents(world: World) -> list[dict[str, str]]:
    """One corpus document per entity: ``{"id", "title", "text"}``."""
    docs = []
    for name, p in world.people.items():
        text = (f"{name} is a {p['trade']} born in {p['born_year']} in the town of {p['born_in']}. "
                f"{name} works for {p['works_for']}.")  # fmt: skip
        docs.append({"id": "person:" + name, "title": name, "text": text})
    for name, f in world.firms.items():
        text = f"{name} is a {f['kind']} founded in {f['founded']}. Its headquarters are in {f['based_in']}."
        docs.append({"id": "firm:" + name, "title": name, "text": text})
    for name, t in world.towns.items():
        text = f"{name} is a town in the region of {t['region']}, with a population of {t['population']}."
        docs.append({"id": "town:" + name, "title": name, "text": text})
    return docs


def _question(rng: random.Random, world: World, person: str, hops: int) -> tuple[str, str, list[tuple[str, str]]]:
    """(question, answer, [(query, fact learned)]) for ``hops`` hops starting at ``person``."""
    p = world.people[person]
    firm, town = p["works_for"], p["born_in"]
    if hops == 1:
        kind = rng.choice(["born_in", "works_for", "born_year"])
        ask = {"born_in": f"In which town was {person} born?", "works_for": f"Which firm does {person} work for?",
               "born_year": f"In which year was {person} born?"}[kind]  # fmt: skip
        return ask, str(p[kind]), [(person, str(p[kind]))]
    if hops == 2:
        if rng.random() < 0.5:
            f = world.firms[firm]
            return (f"In which year was the firm that {person} works for founded?", str(f["founded"]),
                    [(person, firm), (f"{firm} founded", str(f["founded"]))])  # fmt: skip
        region = world.towns[town]["region"]
        return (f"In which region is the town where {person} was born?", region,
                [(person, town), (f"{town} region", region)])  # fmt: skip
    based = world.firms[firm]["based_in"]
    region = world.towns[based]["region"]
    return (f"In which region are the headquarters of the firm that {person} works for?", region,
            [(person, firm), (f"{firm} headquarters", based), (f"{based} region", region)])  # fmt: skip


def lookup_tasks(n: int, *, seed: int = 0, difficulty: int = 1) -> list[Task]:
    """``n`` questions of ``difficulty`` hops over the world of ``seed``."""
    if difficulty not in (1, 2, 3):
        raise ValueError("difficulty must be 1, 2 or 3")
    blocks = max(1, math.ceil(n / PEOPLE_PER_BLOCK))
    world = build_world(seed, blocks)
    people = list(world.people)
    tasks = []
    for i in range(n):
        rng = random.Random(f"lookup/{seed}/{difficulty}/{i}")
        question, answer, hops = _question(rng, world, people[i], difficulty)
        turns = [ExpertTurn(text="I will search the corpus.", tool_calls=[("search", {"query": hops[0][0], "k": 5})])]
        turns += [
            ExpertTurn(text=f"That gives {fact}. Next I look that up.", tool_calls=[("search", {"query": query, "k": 5})])
            for (_, fact), (query, _) in itertools.pairwise(hops)
        ]
        turns.append(ExpertTurn(text=f"The documents say {answer}. <answer>{answer}</answer>"))
        tasks.append(
            Task(
                id=f"lookup-{seed}-{difficulty}-{i}",
                suite="lookup",
                prompt=question + " Search the corpus; answer with the name or number only, in <answer></answer> tags.",
                answer=answer,
                tools=["search"],
                verifier="exact",
                expert=turns,
                metadata={"corpus": {"seed": seed, "blocks": blocks}, "hops": [f for _, f in hops],
                          "difficulty": difficulty, "seed": seed},
            )
        )
    return tasks


def _build_corpus(seed: int, blocks: int, root: Path) -> Path:
    index_dir = root / "index"
    if index_dir.exists():  # build_index renames a finished temporary directory into place
        return index_dir
    from reasonloop.tools.search import SearchIndexError, build_index

    root.mkdir(parents=True, exist_ok=True)
    corpus = root / "corpus.jsonl"
    tmp = corpus.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(d) + "\n" for d in world_documents(build_world(seed, blocks))), encoding="utf-8")
    tmp.replace(corpus)
    try:
        build_index(corpus, index_dir)
    except SearchIndexError:
        if not index_dir.exists():  # another process may have built it meanwhile
            raise
    return index_dir


def lookup_tool_options(tasks: Sequence[Task], cache_dir: Path) -> dict[str, dict[str, Any]]:
    """Build (once) the corpus and index the tasks search; the ``search`` tool's options."""
    corpora = {(t.metadata["corpus"]["seed"], t.metadata["corpus"]["blocks"]) for t in tasks}
    if len(corpora) > 1:
        raise ConfigError(f"lookup tasks from {len(corpora)} different corpora cannot share one search tool")
    if not corpora:
        return {}
    seed, blocks = corpora.pop()
    index_dir = _build_corpus(seed, blocks, Path(cache_dir) / f"lookup-s{seed}-b{blocks}")
    return {"search": {"index_dir": str(index_dir)}}
