"""Reading z3's replies to an SMT-LIB script, command by command.

z3 answers each output command (``check-sat``, ``get-model``...) with exactly one
reply or one ``(error "line L column C: ...")``; silent commands print nothing or an
error. Errors are attributed to commands by their position, so an error raised by
the checker's own trailing commands (asking for a model after ``unsat``) is told
apart from an error in the user's script, which always makes the result an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from reasonloop.tools._smt_script import (
    CHECK_COMMANDS,
    OUTPUT_COMMANDS,
    Node,
    ScriptError,
    parse_sexprs,
    render,
    tokenize,
)

__all__ = ["Replies", "SentCommand", "read_replies"]

_POSITION = re.compile(r"^line (\d+) column (\d+):")


@dataclass(frozen=True, slots=True)
class SentCommand:
    """A command as sent to z3: ``role`` is ``user``, ``check`` (added check-sat) or ``info``."""

    name: str
    start: int
    role: str


@dataclass(kw_only=True)
class Replies:
    """What z3 said, sorted by meaning."""

    verdicts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Errors caused by the user's commands (or with no position)."""
    model: dict[str, str] | None = None
    user_model: dict[str, str] | None = None
    values: dict[str, str] = field(default_factory=dict)
    core: list[str] | None = None
    reason_unknown: str | None = None
    hard_timeout: bool = False
    out_of_memory: bool = False
    unreadable: str | None = None


def _string(node: Node) -> str:
    tok = node.token
    if tok is None:
        return render(node)
    if tok.kind == "string":
        return tok.value[1:-1].replace('""', '"')
    return tok.value


def _model(node: Node) -> dict[str, str]:
    entries = node.children[1:] if node.head == "model" else node.children
    model: dict[str, str] = {}
    for entry in entries:
        parts = entry.children
        if entry.head != "define-fun" or len(parts) != 5:
            continue
        name, params, body = render(parts[1]), parts[2], parts[4]
        model[name] = f"(lambda {render(params)} {render(body)})" if params.children else render(body)
    return model


def _values(node: Node) -> dict[str, str]:
    return {render(p.children[0]): render(p.children[1]) for p in node.children if len(p.children) == 2}


def _command_at(text: str, message: str, commands: list[SentCommand]) -> int | None:
    found = _POSITION.match(message)
    if found is None:
        return None
    line, col = int(found.group(1)), int(found.group(2))
    offset, at = 0, 1
    while at < line:
        nxt = text.find("\n", offset)
        if nxt < 0:
            break
        offset, at = nxt + 1, at + 1
    offset += col
    index = None
    for i, cmd in enumerate(commands):
        if cmd.start <= offset:
            index = i
    return index


def _take(replies: Replies, cmd: SentCommand, node: Node) -> None:
    if cmd.name in CHECK_COMMANDS:
        if cmd.role != "info" and node.token is not None:
            replies.verdicts.append(node.token.value)
    elif cmd.name == "get-model":
        model = _model(node)
        if cmd.role == "user":
            replies.user_model = model
        else:
            replies.model = model
    elif cmd.name == "get-value" and cmd.role == "user":
        replies.values.update(_values(node))
    elif cmd.name in ("get-unsat-core", "get-unsat-assumptions") and cmd.role == "user":
        replies.core = [_string(c) for c in node.children]
    elif cmd.name == "get-info" and cmd.role == "info" and node.head == ":reason-unknown" and len(node.children) > 1:
        replies.reason_unknown = _string(node.children[1])


def _parse(stdout: str, partial: bool) -> list[Node] | str:
    try:
        return parse_sexprs(stdout, tokenize(stdout, partial=partial), max_depth=1 << 20, partial=partial)
    except ScriptError as exc:
        return f"could not read z3's output ({exc}): {stdout[:300]!r}"


def read_replies(text: str, commands: list[SentCommand], stdout: str, *, partial: bool = False) -> Replies:
    """Match z3's ``stdout`` to the ``commands`` of ``text`` (the script as sent)."""
    replies = Replies()
    nodes = _parse(stdout, partial)
    if isinstance(nodes, str):
        replies.unreadable = nodes
        return replies
    pending = [i for i, c in enumerate(commands) if c.name in OUTPUT_COMMANDS]
    cursor = 0
    for node in nodes:
        if node.head == "error":
            message = _string(node.children[1]) if len(node.children) > 1 else "error"
            if message == "out of memory":
                replies.out_of_memory = True
                continue
            index = _command_at(text, message, commands)
            if index is None or commands[index].role != "info":
                replies.errors.append(message)
            if index is not None and cursor < len(pending) and pending[cursor] == index:
                cursor += 1
            continue
        if node.token is not None and node.token.value == "timeout":
            replies.hard_timeout = True
            break
        if node.token is not None and node.token.value == "unsupported":
            replies.errors.append("z3 answered 'unsupported' to a command or option of the script")
            continue
        if cursor < len(pending):
            _take(replies, commands[pending[cursor]], node)
            cursor += 1
    return replies
