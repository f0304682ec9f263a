"""SMT-LIB 2 scripts as data: tokenize, validate against an allow-list, read z3's replies.

The checker passes the user's text to z3 unchanged (so z3's line numbers stay the
user's), but only after this module has read it the way z3's scanner does and
refused everything that is not needed to state and check a formula: commands that
read files (``include``), options that redirect output to files or write logs
(``:regular-output-channel``, ``:trace``...), and ``echo``, which could print a
forged ``sat``. Validation is an allow-list, so an unknown command is refused too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "CHECK_COMMANDS",
    "Command",
    "Node",
    "Script",
    "ScriptError",
    "Token",
    "parse_script",
    "parse_sexprs",
    "render",
    "tokenize",
]

CHECK_COMMANDS = frozenset({"check-sat", "check-sat-assuming", "check-sat-using"})
OUTPUT_COMMANDS = CHECK_COMMANDS | frozenset(
    {
        "get-model", "get-value", "get-unsat-core", "get-unsat-assumptions", "get-info", "get-assertions",
        "get-assignment", "get-proof", "get-objectives", "eval", "simplify",
    }
)  # fmt: skip
"""Commands that answer with exactly one reply (or one error)."""

_SILENT_COMMANDS = frozenset(
    {
        "set-logic", "set-option", "set-info", "declare-sort", "define-sort", "declare-const", "declare-fun",
        "define-const", "define-fun", "define-fun-rec", "define-funs-rec", "declare-datatype",
        "declare-datatypes", "assert", "assert-soft", "minimize", "maximize", "push", "pop", "reset",
        "reset-assertions", "exit",
    }
)  # fmt: skip
_REFUSED_COMMANDS = {
    "include": "(include ...) is not allowed: the checker reads no files; paste the declarations instead",
    "echo": "(echo ...) is not allowed: it prints arbitrary text that could be mistaken for a verdict",
    "check-sat-using": "(check-sat-using ...) is not allowed: tactic parameters can write files; use (check-sat)",
    "simplify": "(simplify ...) is not allowed: its parameters are not checked; use (eval ...) or (check-sat)",
}
ALLOWED_COMMANDS = (OUTPUT_COMMANDS | _SILENT_COMMANDS) - _REFUSED_COMMANDS.keys()


_OPTIONS = frozenset(
    {
        "produce_models", "produce_unsat_cores", "produce_assignments", "produce_assertions",
        "produce_unsat_assumptions", "produce_proofs", "random_seed", "timeout", "rlimit",
        "global_declarations", "model", "unsat_core", "proof", "model_validate", "well_sorted_check",
        "type_check", "auto_config", "encoding", "interactive_mode", "incremental", "opt.priority",
    }
)  # fmt: skip
_OPTION_MODULES = ("smt.", "sat.", "nlsat.", "pp.", "model.", "opt.", "rewriter.", "model_evaluator.", "nnf.", "pi.")
_OPTION_FORBIDDEN = (
    "file", "log", "dump", "trace", "channel", "output", "verbose", "print", "console", "display", "compliant",
    "parallel", "smt2", "benchmark", "stats", "profile", "prefix", "mathematica", "visual",
)  # fmt: skip
"""Fragments of z3 parameter names that write files, logs or change the reply format."""

# Defence in depth: refused even inside comments or strings, in case z3 ever reads
# the text differently from this tokenizer.
_RAW_REFUSED = (
    (re.compile(r"(?i)(regular|diagnostic)[-_]output[-_]channel"), "output-channel options are not allowed"),
    (re.compile(r"\(\s*\|?\s*include\b"), "(include ...) is not allowed: the checker reads no files"),
)
_FLAG_OR_NUMBER = re.compile(r"true|false|\d+(\.\d+)?")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TOKEN = re.compile(
    r"""(?P<ws>[ \t\r\n]+)
       |(?P<comment>;[^\n]*)
       |(?P<lpar>\()
       |(?P<rpar>\))
       |(?P<string>"(?:[^"]|"")*")
       |(?P<qsym>\|[^|\\]*\|)
       |(?P<atom>[^\s()";|\\]+)
       |(?P<bad>.)""",
    re.X | re.S,
)
_KINDS = {"lpar": "(", "rpar": ")"}


class ScriptError(ValueError):
    """The text is not an acceptable SMT-LIB script; the message names the place."""


@dataclass(frozen=True, slots=True)
class Token:
    """One lexeme; ``value`` is the symbol name for quoted symbols (bars removed)."""

    kind: str
    """One of ``(``, ``)``, ``atom``, ``string``, ``qsym``."""
    value: str
    start: int
    end: int


@dataclass(slots=True)
class Node:
    """An s-expression: an atom (``token``) or a list (``children``)."""

    start: int
    end: int = 0
    token: Token | None = None
    children: list[Node] = field(default_factory=list)

    @property
    def is_list(self) -> bool:
        return self.token is None

    @property
    def head(self) -> str | None:
        """Name of the first element of a list, if it is a symbol."""
        if self.token is not None or not self.children:
            return None
        first = self.children[0].token
        return first.value if first is not None and first.kind in ("atom", "qsym") else None


@dataclass(frozen=True, slots=True)
class Command:
    """A top-level command of a script, with its place in the text."""

    name: str
    node: Node
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Script:
    """A validated script."""

    text: str
    commands: list[Command]
    lines: int

    def has(self, *names: str) -> bool:
        return any(c.name in names for c in self.commands)


def position(text: str, offset: int) -> tuple[int, int]:
    """(line from 1, column from 0): z3's convention, so messages agree with z3's."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1)


def _where(text: str, offset: int) -> str:
    line, col = position(text, offset)
    return f"line {line} column {col}"


def tokenize(text: str, *, partial: bool = False) -> list[Token]:
    """Split ``text`` into tokens the way z3's SMT-LIB scanner does.

    With ``partial`` (reading a reply cut at the output cap), stop at the first
    problem and return the tokens before it instead of raising.

    Raises:
        ScriptError: on an unterminated string or quoted symbol, or a character z3 refuses.
    """
    tokens: list[Token] = []
    append = tokens.append
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "ws" or kind == "comment":
            continue
        if kind == "bad":
            if partial:
                return tokens
            pos, char = m.start(), m.group()
            what = {'"': "unterminated string", "|": "unterminated quoted symbol (or one containing '\\')"}
            raise ScriptError(f"{_where(text, pos)}: {what.get(char, f'unexpected character {char!r}')}")
        if kind == "qsym":
            append(Token("qsym", m.group()[1:-1], m.start(), m.end()))
        else:
            kind = kind or ""
            append(Token(_KINDS.get(kind, kind), m.group(), m.start(), m.end()))
    return tokens


def parse_sexprs(text: str, tokens: list[Token], *, max_depth: int, partial: bool = False) -> list[Node]:
    """Group tokens into top-level s-expressions without recursion (deep input is safe).

    With ``partial``, an unclosed last expression is dropped instead of raising.

    Raises:
        ScriptError: on unbalanced parentheses or nesting deeper than ``max_depth``.
    """
    top: list[Node] = []
    stack: list[Node] = []
    for tok in tokens:
        if tok.kind == "(":
            if len(stack) >= max_depth:
                raise ScriptError(f"{_where(text, tok.start)}: nesting deeper than {max_depth} levels")
            stack.append(Node(start=tok.start))
        elif tok.kind == ")":
            if not stack:
                raise ScriptError(f"{_where(text, tok.start)}: unbalanced ')' with no matching '('")
            node = stack.pop()
            node.end = tok.end
            (stack[-1].children if stack else top).append(node)
        else:
            leaf = Node(start=tok.start, end=tok.end, token=tok)
            (stack[-1].children if stack else top).append(leaf)
    if stack and not partial:
        raise ScriptError(f"{_where(text, stack[-1].start)}: '(' is never closed (unbalanced parentheses)")
    return top


def render(node: Node) -> str:
    """One-line text of an s-expression (strings kept verbatim)."""
    parts: list[str] = []
    todo: list[Node | str] = [node]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            parts.append(item)
        elif item.token is not None:
            tok = item.token
            parts.append(f"|{tok.value}|" if tok.kind == "qsym" and not _simple(tok.value) else tok.value)
        else:
            todo.append(")")
            for i, child in enumerate(reversed(item.children)):
                todo.append(child)
                if i < len(item.children) - 1:
                    todo.append(" ")
            todo.append("(")
    return "".join(parts)


def _simple(name: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z~!@$%^&*_\-+=<>.?/][A-Za-z0-9~!@$%^&*_\-+=<>.?/]*", name))


def _check_option(text: str, cmd: Node) -> None:
    args = cmd.children[1:]
    key = args[0].token if args else None
    if key is None or key.kind != "atom" or not key.value.startswith(":"):
        raise ScriptError(f"{_where(text, cmd.start)}: set-option needs a keyword such as :produce-models")
    name = key.value[1:].lower().replace("-", "_")
    values = [a.token for a in args[1:]]
    if name in _OPTIONS:
        # standard options: symbols such as `encoding unicode` are fine, strings never are
        refused = any(v is None or v.kind == "string" for v in values)
    else:
        # solver module parameters: only flags and numbers, so none can name a file
        refused = (
            not name.startswith(_OPTION_MODULES)
            or any(bad in name for bad in _OPTION_FORBIDDEN)
            or any(v is None or not _FLAG_OR_NUMBER.fullmatch(v.value) for v in values)
        )
    if refused:
        raise ScriptError(
            f"{_where(text, cmd.start)}: option {key.value} is not allowed here (the checker fixes output, files "
            "and logging); allowed: :produce-models, :produce-unsat-cores, :random-seed, :timeout, and smt.*, "
            "sat.*, nlsat.*, opt.*, model.* parameters set to true, false or a number"
        )


def _command(text: str, node: Node, is_last: bool) -> Command:
    name = node.head
    if not node.is_list or name is None:
        shown = node.token.value[:40] if node.token is not None else "()"
        raise ScriptError(f"{_where(text, node.start)}: expected a command like (assert ...), got {shown!r}")
    if name in _REFUSED_COMMANDS:
        raise ScriptError(f"{_where(text, node.start)}: {_REFUSED_COMMANDS[name]}")
    if name not in ALLOWED_COMMANDS:
        raise ScriptError(f"{_where(text, node.start)}: unknown or unsupported command ({name} ...)")
    if name == "exit" and not is_last:
        raise ScriptError(f"{_where(text, node.start)}: (exit) may only be the last command")
    if name == "set-option":
        _check_option(text, node)
    line, col = position(text, node.start)
    return Command(name=name, node=node, line=line, column=col)


def parse_script(text: str, *, max_chars: int, max_depth: int) -> Script:
    """Validate an SMT-LIB script and list its commands.

    Raises:
        ScriptError: with a message naming the line and column of the first problem.
    """
    if len(text) > max_chars:
        raise ScriptError(f"input is too long ({len(text):,} characters; the limit is {max_chars:,})")
    if not text.strip():
        raise ScriptError("input is empty: write SMT-LIB commands such as (assert ...) and (check-sat)")
    bad = _CONTROL.search(text)
    if bad is not None:
        raise ScriptError(f"{_where(text, bad.start())}: control character U+{ord(bad.group()):04X} in input")
    for pattern, message in _RAW_REFUSED:
        found = pattern.search(text)
        if found is not None:
            raise ScriptError(f"{_where(text, found.start())}: {message}")
    nodes = parse_sexprs(text, tokenize(text), max_depth=max_depth)
    commands = [_command(text, node, i == len(nodes) - 1) for i, node in enumerate(nodes)]
    if not any(c.name == "assert" or c.name in CHECK_COMMANDS for c in commands):
        raise ScriptError("the script has no (assert ...) and no (check-sat): there is nothing to check")
    return Script(text=text, commands=commands, lines=text.count("\n") + 1)
