"""Tasks from standard data files on local paths (or from ``datasets`` when installed).

    loaded = load_tasks("gsm8k", "data/gsm8k/test.jsonl", limit=100)
    loaded.tasks, loaded.skipped          # bad records are reported, never fatal

Formats (``.jsonl``: one JSON object per line; ``.json``: a list, or ``{"data": [...]}``):

``gsm8k`` (verifier ``numeric``)::

    {"question": "Tom has 3 boxes of 12 eggs. How many eggs?", "answer": "3 * 12 = 36\\n#### 36"}
    {"question": "...", "answer": "... #### 1,250"}
    (the reference is the number after ``####``; commas are dropped)

``math`` (verifier ``math``, math-verify equivalence)::

    {"problem": "What is $1/2 + 1/4$?", "solution": "... so the sum is $\\\\boxed{\\\\frac{3}{4}}$."}
    {"problem": "...", "answer": "\\\\frac{3}{4}"}
    (``answer`` if present, else the last ``\\\\boxed{}`` of ``solution``)

``hotpotqa`` (verifier ``qa-f1``: score F1, correct = exact match; the ``context``
paragraphs, when present, become the search corpus)::

    {"_id": "5a8b", "question": "Which band formed first?", "answer": "Oasis",
     "context": [["Oasis (band)", ["Oasis were formed in 1991.", "..."]], ["Blur", ["..."]]]}
    {"id": "q2", "question": "...", "answer": "..."}

``folio`` / ``proofwriter`` (verifier ``label``: True / False / Unknown, Uncertain = Unknown)::

    {"premises": ["All cats are mammals.", "Tom is a cat."], "conclusion": "Tom is a mammal.", "label": "True"}
    {"context": "The bear is big. If something is big then it is red.", "question": "The bear is red.", "answer": true}
    (FOLIO keys: premises (text or list) / conclusion / label; ProofWriter: theory or context / question / answer or label)

``pddl`` (verifier ``plan``; a validated plan file makes the task's scripted expert)::

    blocks/domain.pddl          (shared domain; or p01-domain.pddl / domain-p01.pddl per problem)
    blocks/p01.pddl             (one problem per file)
    blocks/p01.plan             (optional: a valid plan, one action per line; also p01.pddl.plan, p01.soln)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonloop.bench import verifiers as _verifiers  # noqa: F401  (registers math, qa-*, label)
from reasonloop.bench.task import Task
from reasonloop.bench.verifiers import LABELS, last_boxed
from reasonloop.errors import ConfigError
from reasonloop.registry import Registry

__all__ = [
    "LOADERS",
    "LoadedTasks",
    "Loader",
    "file_suite",
    "hotpot_corpus",
    "iter_records",
    "load_dataset_tasks",
    "load_tasks",
]

Record = dict[str, Any]
Convert = Callable[[Record, int, str], Task | str]
"""``convert(record, index, source)`` -> a task, or the reason the record is unusable."""

_ANSWER_TAGS = " Give the final answer in <answer></answer> tags."


@dataclass(frozen=True, kw_only=True)
class Loader:
    """How one file format becomes tasks."""

    name: str
    convert: Convert
    tools: tuple[str, ...]
    """Tools the tasks are offered by default."""


@dataclass(kw_only=True)
class LoadedTasks:
    """Tasks read from a file, and the records that were skipped (with why)."""

    tasks: list[Task] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    """(1-based record number, reason)."""


def iter_records(path: str | Path) -> Iterator[tuple[int, Record | str]]:
    """(number, record or reason) for each record of a ``.jsonl`` or ``.json`` file."""
    src = Path(path)
    try:
        text = src.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {src}: {exc}") from exc
    if src.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{src}: not JSON ({exc})") from exc
        items = data.get("data") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise ConfigError(f"{src}: expected a list of records or {{'data': [...]}}")
        for i, item in enumerate(items, 1):
            yield i, item if isinstance(item, dict) else "not a JSON object"
        return
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            yield i, f"not JSON ({exc})"
            continue
        yield i, obj if isinstance(obj, dict) else "not a JSON object"


def _text(record: Record, *keys: str) -> str | None:
    for key in keys:
        value = record.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return "\n".join(v.strip() for v in value)
        if isinstance(value, bool | int | float):  # ProofWriter writes labels as JSON booleans
            return str(value)
    return None


def _id(record: Record, index: int, source: str) -> str:
    raw = record.get("_id", record.get("id", record.get("example_id")))
    return f"{source}-{raw}" if isinstance(raw, str | int) and str(raw).strip() else f"{source}-{index}"


def _gsm8k(record: Record, index: int, source: str) -> Task | str:
    question, solution = _text(record, "question"), _text(record, "answer")
    if question is None or solution is None:
        return "needs 'question' and 'answer'"
    found = re.search(r"####\s*(-?[\d,]*\.?\d+)", solution)
    if found is None:
        return "the answer has no '#### N' line"
    answer = found.group(1).replace(",", "")
    return Task(id=_id(record, index, source), suite=source, prompt=question + _ANSWER_TAGS, answer=answer,
                tools=["python"], verifier="numeric", metadata={"solution": solution})  # fmt: skip


def _math(record: Record, index: int, source: str) -> Task | str:
    problem = _text(record, "problem", "question")
    answer = _text(record, "answer") or last_boxed(record.get("solution") or "")
    if problem is None or not answer:
        return "needs 'problem' and an 'answer' or a \\boxed{} 'solution'"
    meta: dict[str, Any] = {k: record[k] for k in ("level", "type", "subject") if k in record}
    return Task(id=_id(record, index, source), suite=source, prompt=problem + _ANSWER_TAGS, answer=answer,
                tools=["python"], verifier="math", metadata=meta)  # fmt: skip


def _hotpot(record: Record, index: int, source: str) -> Task | str:
    question, answer = _text(record, "question"), _text(record, "answer")
    if question is None or answer is None:
        return "needs 'question' and 'answer'"
    meta: dict[str, Any] = {k: record[k] for k in ("type", "level") if k in record}
    return Task(id=_id(record, index, source), suite=source, prompt=question + " Search for the facts." + _ANSWER_TAGS,
                answer=answer, tools=["search"], verifier="qa-f1", metadata=meta)  # fmt: skip


def _logic(record: Record, index: int, source: str) -> Task | str:
    premises = _text(record, "premises", "theory", "context")
    claim = _text(record, "conclusion", "question", "hypothesis")
    label = _text(record, "label", "answer")
    if premises is None or claim is None or label is None:
        return "needs premises/theory/context, conclusion/question and label/answer"
    canon = LABELS.get(label.lower())
    if canon is None:
        return f"label {label!r} is not True/False/Unknown/Uncertain"
    prompt = (f"Premises:\n{premises}\nStatement: {claim}\nDoes the statement follow from the premises (True), "
              "does its negation follow (False), or neither (Unknown)?" + _ANSWER_TAGS)  # fmt: skip
    return Task(id=_id(record, index, source), suite=source, prompt=prompt, answer=canon, tools=["z3"], verifier="label")


LOADERS: Registry[Loader] = Registry("loader")
for _loader in (
    Loader(name="gsm8k", convert=_gsm8k, tools=("python",)),
    Loader(name="math", convert=_math, tools=("python",)),
    Loader(name="hotpotqa", convert=_hotpot, tools=("search",)),
    Loader(name="folio", convert=_logic, tools=("z3",)),
    Loader(name="proofwriter", convert=_logic, tools=("z3",)),
):
    LOADERS.register(_loader.name, _loader)


def _convert_all(loader: Loader, records: Iterable[tuple[int, Record | str]], limit: int | None) -> LoadedTasks:
    out = LoadedTasks()
    seen: set[str] = set()
    for number, record in records:
        if limit is not None and len(out.tasks) >= limit:
            break
        made = record if isinstance(record, str) else loader.convert(record, number, loader.name)
        if isinstance(made, Task) and made.id in seen:
            made = f"duplicate id {made.id}"
        if isinstance(made, str):
            out.skipped.append((number, made))
            continue
        seen.add(made.id)
        out.tasks.append(made)
    return out


def load_tasks(kind: str, path: str | Path, *, limit: int | None = None) -> LoadedTasks:
    """Tasks from a local file (``pddl``: a folder) of format ``kind`` (see the module docstring)."""
    if kind == "pddl":
        from reasonloop.bench.pddl_folder import load_pddl_folder

        return load_pddl_folder(path, limit=limit)
    return _convert_all(LOADERS.get(kind), iter_records(path), limit)


def load_dataset_tasks(kind: str, name: str, *, split: str = "test", config: str | None = None,
                       limit: int | None = None) -> LoadedTasks:  # fmt: skip
    """Tasks from a dataset the user already has in the ``datasets`` cache (never downloads here:
    set ``HF_DATASETS_OFFLINE=1``); records are read as with :func:`load_tasks`."""
    try:
        from datasets import load_dataset
    except ImportError:
        raise ConfigError("reading datasets needs the `datasets` package; or point load_tasks at a local file") from None
    data = load_dataset(name, config, split=split)
    return _convert_all(LOADERS.get(kind), ((i, dict(r)) for i, r in enumerate(data, 1)), limit)


def hotpot_corpus(path: str | Path) -> list[dict[str, str]]:
    """Search documents from the ``context`` paragraphs of a HotpotQA-style file (one per title)."""
    docs: dict[str, dict[str, str]] = {}
    for _, record in iter_records(path):
        context = record.get("context") if isinstance(record, dict) else None
        for para in context if isinstance(context, list) else []:
            if (isinstance(para, list) and len(para) == 2 and isinstance(para[0], str) and isinstance(para[1], list)
                    and para[0] not in docs):  # fmt: skip
                text = " ".join(s.strip() for s in para[1] if isinstance(s, str)).strip()
                if text:
                    docs[para[0]] = {"id": para[0], "title": para[0], "text": text}
    return list(docs.values())


def _hotpot_options(path: Path) -> Callable[[Any, Path], dict[str, dict[str, Any]]]:
    def options(tasks: Any, cache_dir: Path) -> dict[str, dict[str, Any]]:
        import hashlib

        from reasonloop.tools.search import build_index

        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        root = Path(cache_dir) / f"hotpot-{digest}"
        if not (root / "index").exists():
            docs = hotpot_corpus(path)
            if not docs:
                raise ConfigError(f"{path}: no 'context' paragraphs to search; give the search tool an index")
            root.mkdir(parents=True, exist_ok=True)
            (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
            build_index(root / "corpus.jsonl", root / "index")
        return {"search": {"index_dir": str(root / "index")}}

    return options


def file_suite(spec: str) -> Any:
    """A :class:`~reasonloop.bench.suites.Suite` over a data file: ``"gsm8k:data/test.jsonl"``, ``"pddl:folder"``.

    Its ``generate(n)`` returns the file's first ``n`` usable tasks (seed and difficulty
    do not apply); skipped records are reported in the error when none is usable.
    """
    from reasonloop.bench.suites import Suite

    kind, _, raw = spec.partition(":")
    if not raw:
        raise ConfigError(f"suite {spec!r}: expected KIND:PATH with KIND one of {', '.join(['pddl', *LOADERS.names()])}")
    path = Path(raw).expanduser()
    tools = ("plan", "validate_plan") if kind == "pddl" else LOADERS.get(kind).tools

    def generate(n: int, *, seed: int = 0, difficulty: int = 0) -> list[Task]:
        loaded = load_tasks(kind, path, limit=n)
        if not loaded.tasks:
            raise ConfigError(f"{path}: no usable {kind} records; first problems: {loaded.skipped[:3]}")
        return loaded.tasks

    options = _hotpot_options(path) if kind == "hotpotqa" else (lambda tasks, cache_dir: {})
    return Suite(name=spec, generate_fn=generate, tools=tools, difficulties=(0,), default_difficulty=0,
                 tool_options=options, description=f"{kind} tasks from {path}")  # fmt: skip
