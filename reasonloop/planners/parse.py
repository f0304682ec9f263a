"""Read a PDDL domain and problem: light checks first, then unified-planning.

Strings are always PDDL text and :class:`os.PathLike` values are files, so text a
model wrote can never make the reader open a file. ``check_task`` is pure Python and
cheap (it runs in the caller's process); ``parse_task`` imports unified-planning and
is what the isolated planner process runs.
"""

from __future__ import annotations

import os
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonloop.planners.checks import Vocabulary, check_domain, check_problem
from reasonloop.planners.result import PddlIssue
from reasonloop.planners.sexpr import DEFAULT_MAX_CHARS, FileKind, ReadError, read_sexpr

__all__ = ["CheckedTask", "ParsedTask", "PddlSource", "check_task", "load_pddl", "parse_task"]

PddlSource = str | os.PathLike[str]
"""PDDL text (``str``) or a file (``Path``)."""

_LINE = re.compile(r"line:?\s*(\d+)")


@dataclass(frozen=True, kw_only=True)
class CheckedTask:
    """Domain and problem text that passed the light checks."""

    domain: str
    """The domain's PDDL text."""
    problem: str
    """The problem's PDDL text."""
    vocab: Vocabulary
    """Names declared by the domain and the problem."""


@dataclass(frozen=True, kw_only=True)
class ParsedTask:
    """A task unified-planning accepted."""

    checked: CheckedTask
    """The text and names it came from."""
    problem: Any
    """The ``unified_planning.model.Problem``."""
    parse_s: float
    """Seconds spent in unified-planning's reader."""


def load_pddl(source: PddlSource, kind: FileKind, *, max_chars: int = DEFAULT_MAX_CHARS) -> str | PddlIssue:
    """Return the text of ``source`` or an issue saying why it cannot be read."""
    if isinstance(source, str):
        return source
    if isinstance(source, bytes):
        try:
            return source.decode("utf-8")
        except UnicodeDecodeError as exc:
            return PddlIssue(file=kind, message=f"the {kind} is not UTF-8 text (byte {exc.start})")
    path = Path(source)
    try:
        size = path.stat().st_size
        if size > max_chars * 4:
            return PddlIssue(file=kind, message=f"{path} is {size:,} bytes; the limit is {max_chars:,} characters")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return PddlIssue(file=kind, message=f"{path} is not UTF-8 text (byte {exc.start})")
    except OSError as exc:
        return PddlIssue(file=kind, message=f"cannot read {path}: {exc.strerror or exc}")


def check_task(
    domain: PddlSource, problem: PddlSource, *, max_chars: int = DEFAULT_MAX_CHARS
) -> CheckedTask | list[PddlIssue]:
    """Run the light checks on a domain and problem.

    Args:
        domain: Domain text or file.
        problem: Problem text or file.
        max_chars: Longest text accepted per file.

    Returns:
        The checked task, or the issues found (domain issues first; the problem is not
        checked against a domain that has issues).
    """
    texts: dict[FileKind, str] = {}
    sources: tuple[tuple[FileKind, PddlSource], ...] = (("domain", domain), ("problem", problem))
    for kind, source in sources:
        loaded = load_pddl(source, kind, max_chars=max_chars)
        if isinstance(loaded, PddlIssue):
            return [loaded]
        texts[kind] = loaded
    try:
        dom_form = read_sexpr(texts["domain"], "domain", max_chars=max_chars)
    except ReadError as err:
        return [err.issue]
    vocab, issues = check_domain(dom_form)
    if issues:
        return issues
    try:
        prob_form = read_sexpr(texts["problem"], "problem", max_chars=max_chars)
    except ReadError as err:
        return [err.issue]
    full, issues = check_problem(prob_form, vocab)
    if issues:
        return issues
    return CheckedTask(domain=texts["domain"], problem=texts["problem"], vocab=full)


def parse_task(
    domain: PddlSource, problem: PddlSource, *, max_chars: int = DEFAULT_MAX_CHARS
) -> ParsedTask | list[PddlIssue]:
    """Check, then parse with unified-planning (imported here, not at module import).

    Returns:
        The parsed task, or located issues.
    """
    checked = check_task(domain, problem, max_chars=max_chars)
    if isinstance(checked, list):
        return checked
    from unified_planning.io import PDDLReader

    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = PDDLReader().parse_problem_string(checked.domain, checked.problem)
    except RecursionError:
        return [PddlIssue(file="problem", message="the PDDL is nested too deeply to parse")]
    except Exception as exc:  # the reader raises many types; all mean "bad input"
        return [_describe_reader_error(exc, checked)]
    return ParsedTask(checked=checked, problem=parsed, parse_s=time.perf_counter() - start)


def _describe_reader_error(exc: Exception, checked: CheckedTask) -> PddlIssue:
    """Turn an exception from unified-planning's reader into a located issue."""
    from unified_planning.io import PDDLReader

    kind: FileKind = "problem"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            PDDLReader().parse_problem_string(checked.domain)
    except Exception:
        kind = "domain"
    text = str(exc).strip().replace("\n", " ") or type(exc).__name__
    if isinstance(exc, KeyError):
        text = f"unknown name {text}; declare it before use"
    match = _LINE.search(text)
    line = int(match.group(1)) if match else None
    return PddlIssue(file=kind, line=line, message=f"unified-planning rejected the {kind}: {text[:500]}")
