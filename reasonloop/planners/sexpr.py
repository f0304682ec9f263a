"""A small S-expression reader for PDDL that keeps line numbers.

unified-planning's reader reports character offsets for some errors and none for others,
and accepts things a model should be told about (a problem written for another domain).
This reader runs first, in the caller's process, in time linear in the input: it finds
unbalanced parentheses, foreign characters and runaway nesting with the line to fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from reasonloop.planners.result import PddlIssue

__all__ = ["DEFAULT_MAX_CHARS", "MAX_DEPTH", "Atom", "SList", "Node", "ReadError", "read_sexpr"]

DEFAULT_MAX_CHARS = 1_000_000
"""Longest PDDL text accepted (characters); real benchmark problems are far smaller."""
MAX_DEPTH = 128
"""Deepest nesting accepted; deeper input is hostile or broken and would exhaust parsers' stacks."""

_TOKEN = re.compile(r"\s+|;[^\n]*|\(|\)|[^\s();]+")
_NAME_OK = re.compile(r"^[A-Za-z0-9_\-?:.=<>+*/#!@^~]+$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")

FileKind = Literal["domain", "problem", "plan"]


@dataclass(frozen=True, slots=True)
class Atom:
    """A token; ``text`` is lower-cased because PDDL names are case-insensitive."""

    text: str
    line: int


@dataclass(slots=True)
class SList:
    """A parenthesised list opened on ``line``."""

    items: list[Node] = field(default_factory=list)
    line: int = 1

    def head(self) -> str | None:
        """The first item's text when it is an atom."""
        return self.items[0].text if self.items and isinstance(self.items[0], Atom) else None

    def source(self, limit: int = 60) -> str:
        """The list written back as text (shortened), to quote in messages."""
        text = _render(self)
        return text if len(text) <= limit else text[: limit - 4] + " ...)"


Node = Atom | SList


class ReadError(Exception):
    """Raised internally; carries the issue to report."""

    def __init__(self, issue: PddlIssue) -> None:
        super().__init__(issue.message)
        self.issue = issue


def _render(node: Node) -> str:
    if isinstance(node, Atom):
        return node.text
    return "(" + " ".join(_render(item) for item in node.items) + ")"


def _check_text(text: str, kind: FileKind, max_chars: int) -> None:
    if len(text) > max_chars:
        raise ReadError(
            PddlIssue(
                file=kind,
                message=f"the {kind} is {len(text):,} characters long; the limit is {max_chars:,}",
            )
        )
    if not text.strip():
        example = "(define (domain NAME) ...)" if kind == "domain" else "(define (problem NAME) (:domain NAME) ...)"
        raise ReadError(PddlIssue(file=kind, line=1, message=f"the {kind} is empty; expected {example}"))
    bad = _CONTROL.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        raise ReadError(
            PddlIssue(
                file=kind,
                line=line,
                symbol=repr(bad.group()),
                message=f"control character {bad.group()!r} found; PDDL must be plain text",
            )
        )


def read_sexpr(text: str, kind: FileKind, *, max_chars: int = DEFAULT_MAX_CHARS) -> SList:
    """Read one top-level PDDL form.

    Args:
        text: The PDDL text.
        kind: Which input this is (used in messages).
        max_chars: Longest text accepted.

    Returns:
        The top-level list.

    Raises:
        ReadError: With a located :class:`PddlIssue` when the text cannot be read.
    """
    _check_text(text, kind, max_chars)
    root = SList(line=0)
    stack: list[SList] = [root]
    line = 1
    for match in _TOKEN.finditer(text):
        tok = match.group()
        if tok[0].isspace() or tok[0] == ";":
            line += tok.count("\n")
            continue
        if tok == "(":
            if len(stack) > MAX_DEPTH:
                raise ReadError(PddlIssue(file=kind, line=line, message=f"nesting deeper than {MAX_DEPTH} levels"))
            node = SList(line=line)
            stack[-1].items.append(node)
            stack.append(node)
        elif tok == ")":
            if len(stack) == 1:
                raise ReadError(
                    PddlIssue(
                        file=kind, line=line, symbol=")", message="unexpected ')' with no matching '('; remove it"
                    )
                )
            stack.pop()
        else:
            if not _NAME_OK.match(tok):
                odd = next(ch for ch in tok if not _NAME_OK.match(ch))
                raise ReadError(
                    PddlIssue(
                        file=kind,
                        line=line,
                        symbol=tok,
                        message=f"{odd!r} in {tok!r} is not PDDL syntax; names use letters, digits, '-' and '_', "
                        "and arguments are separated by spaces",
                    )
                )
            stack[-1].items.append(Atom(tok.lower(), line))
    if len(stack) > 1:
        inner = stack[-1]
        missing = len(stack) - 1
        raise ReadError(
            PddlIssue(
                file=kind,
                line=inner.line,
                symbol="(",
                message=f"unbalanced parentheses: {missing} ')' missing; the '(' opened on line {inner.line} "
                f"({inner.source(40)}) is never closed",
            )
        )
    forms = root.items
    if not forms or not isinstance(forms[0], SList):
        raise ReadError(PddlIssue(file=kind, line=1, message=f"expected the {kind} to start with '(define'"))
    if len(forms) > 1:
        extra = forms[1]
        raise ReadError(
            PddlIssue(
                file=kind,
                line=extra.line,
                message=f"text after the end of the define form: {_render(extra)[:40]!r}; check the parentheses",
            )
        )
    return forms[0]
