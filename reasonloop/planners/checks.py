"""Symbol-table checks of a PDDL domain and problem, with lines and names.

These catch what a model most often gets wrong (an undefined predicate, object or
type, a wrong number of arguments, a problem written for another domain, a missing
goal) and say so in words it can act on, before unified-planning sees the text.
They are deliberately partial: whatever they accept still goes through
unified-planning's reader, whose errors are reported as well.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from reasonloop.planners.result import PddlIssue
from reasonloop.planners.sexpr import Atom, FileKind, Node, SList

__all__ = ["MAX_ISSUES", "Vocabulary", "check_domain", "check_problem"]

MAX_ISSUES = 8
"""Stop after this many issues: the first few are what the author needs."""

_CONNECTIVES = frozenset({"and", "or", "not", "imply"})
_QUANTIFIERS = frozenset({"forall", "exists"})
_NUMERIC = frozenset(
    {"<", "<=", ">", ">=", "+", "-", "*", "/", "increase", "decrease", "assign", "scale-up", "scale-down"}
)
_DOMAIN_SECTIONS = frozenset(
    {
        ":requirements",
        ":types",
        ":constants",
        ":predicates",
        ":functions",
        ":action",
        ":durative-action",
        ":derived",
        ":constraints",
    }
)
_PROBLEM_SECTIONS = frozenset({":domain", ":requirements", ":objects", ":init", ":goal", ":metric", ":constraints"})


@dataclass(kw_only=True)
class Vocabulary:
    """Names declared by a domain (and, once a problem is read, its objects)."""

    name: str = ""
    """The domain's name."""
    types: dict[str, str | None] = field(default_factory=lambda: {"object": None})
    """Type -> parent type."""
    constants: dict[str, str] = field(default_factory=dict)
    """Domain constants and problem objects -> type."""
    predicates: dict[str, list[str]] = field(default_factory=dict)
    """Predicate -> parameter names."""
    functions: dict[str, list[str]] = field(default_factory=dict)
    """Numeric function -> parameter names."""
    actions: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """Action -> (parameter, type) pairs."""


class _Checker:
    """Collects issues for one file against a vocabulary."""

    def __init__(self, kind: FileKind, vocab: Vocabulary) -> None:
        self.kind = kind
        self.vocab = vocab
        self.issues: list[PddlIssue] = []

    def add(self, line: int | None, symbol: str | None, message: str) -> None:
        if len(self.issues) < MAX_ISSUES:
            self.issues.append(PddlIssue(file=self.kind, line=line, symbol=symbol, message=message))

    def typed_list(self, items: Iterable[Node], what: str) -> list[tuple[str, str, int]]:
        """Read ``a b - t c`` into (name, type, line), checking the types."""
        names: list[Atom] = []
        out: list[tuple[str, str, int]] = []
        it = iter(items)
        for node in it:
            if isinstance(node, SList):
                self.add(node.line, None, f"unexpected list {node.source()} in {what}; expected names and '- type'")
                continue
            if node.text != "-":
                names.append(node)
                continue
            parent = next(it, None)
            ptype = parent.text if isinstance(parent, Atom) else "object"
            if isinstance(parent, Atom):
                self.check_type(ptype, parent.line, what)
            elif isinstance(parent, SList) and parent.head() == "either":
                ptype = "object"
            else:
                self.add(node.line, "-", f"'-' in {what} must be followed by a type name")
            out += [(n.text, ptype, n.line) for n in names]
            names = []
        out += [(n.text, "object", n.line) for n in names]
        return out

    def check_type(self, name: str, line: int, what: str) -> None:
        if name not in self.vocab.types and name != "number":
            declared = ", ".join(sorted(self.vocab.types))
            self.add(
                line, name, f"undefined type '{name}' in {what}; declared types: {declared}; add it to (:types ...)"
            )

    def term(self, node: Node, scope: dict[str, str], where: str, numeric: bool) -> None:
        if isinstance(node, SList):
            if numeric:
                self.formula(node, scope, where, numeric=True)
            else:
                self.add(node.line, None, f"a nested list {node.source()} cannot be an argument in {where}")
            return
        text = node.text
        if text.startswith("?"):
            if text not in scope:
                known = ", ".join(scope) or "none"
                self.add(node.line, text, f"undefined variable {text} in {where}; variables in scope: {known}")
        elif numeric and _is_number(text):
            return
        elif text not in self.vocab.constants:
            objs = ", ".join(sorted(self.vocab.constants)[:30]) or "none"
            kind = "object" if self.kind == "problem" else "constant"
            self.add(node.line, text, f"undefined {kind} '{text}' in {where}; declared objects/constants: {objs}")

    def atom(self, node: SList, scope: dict[str, str], where: str, numeric: bool) -> None:
        head = node.head() or ""
        args = node.items[1:]
        table = self.vocab.predicates if head in self.vocab.predicates else self.vocab.functions
        if head not in table:
            preds = ", ".join(f"{p}/{len(a)}" for p, a in sorted(self.vocab.predicates.items())) or "none"
            self.add(
                node.line,
                head,
                f"undefined predicate '{head}' in {node.source()} ({where}); declared predicates: {preds}",
            )
            return
        params = table[head]
        if len(args) != len(params):
            self.add(
                node.line,
                head,
                f"'{head}' takes {len(params)} argument(s) ({' '.join(params)}) but {node.source()} gives {len(args)}",
            )
        for arg in args:
            self.term(arg, scope, f"{node.source()} ({where})", numeric=False)

    def formula(self, node: Node, scope: dict[str, str], where: str, numeric: bool = False) -> None:
        if isinstance(node, Atom):
            if numeric:
                self.term(node, scope, where, numeric=True)
            elif node.text not in ("true", "false"):
                self.add(
                    node.line, node.text, f"'{node.text}' in {where} must be inside parentheses, like ({node.text} ...)"
                )
            return
        head = node.head()
        if not node.items:
            return
        if head is None:
            self.add(node.line, None, f"{node.source()} in {where} starts with a list; expected a predicate name")
            return
        rest = node.items[1:]
        if head in _CONNECTIVES:
            for sub in rest:
                self.formula(sub, scope, where)
        elif head in _QUANTIFIERS:
            self.quantified(node, scope, where)
        elif head == "when" and len(rest) == 2:
            self.formula(rest[0], scope, where)
            self.formula(rest[1], scope, where)
        elif head in ("at", "over") and len(rest) == 2 and isinstance(rest[1], SList):
            self.formula(rest[1], scope, where)
        elif head == "=" or head in _NUMERIC:
            is_num = head != "=" or any(isinstance(a, SList) or _is_number(a.text) for a in rest)
            for sub in rest:
                self.term(sub, scope, where, numeric=is_num)
        else:
            self.atom(node, scope, where, numeric)

    def quantified(self, node: SList, scope: dict[str, str], where: str) -> None:
        if len(node.items) != 3 or not isinstance(node.items[1], SList):
            self.add(node.line, node.head(), f"{node.source()} should be ({node.head()} (?v - type) formula)")
            return
        inner = dict(scope)
        inner.update({n: t for n, t, _ in self.typed_list(node.items[1].items, where)})
        self.formula(node.items[2], inner, where)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _header(form: SList, keyword: str, chk: _Checker) -> str | None:
    """Check ``(define (KEYWORD NAME) ...)`` and return NAME."""
    if form.head() != "define" or len(form.items) < 2 or not isinstance(form.items[1], SList):
        chk.add(form.line, form.head(), f"expected ({'define'} ({keyword} NAME) ...) at the top of the {chk.kind}")
        return None
    decl = form.items[1]
    if decl.head() != keyword or len(decl.items) != 2 or not isinstance(decl.items[1], Atom):
        chk.add(decl.line, decl.head(), f"expected ({keyword} NAME) after define, found {decl.source()}")
        return None
    return decl.items[1].text


def _sections(form: SList, allowed: frozenset[str], chk: _Checker) -> list[SList]:
    out: list[SList] = []
    for node in form.items[2:]:
        head = node.head() if isinstance(node, SList) else None
        if isinstance(node, SList) and head in allowed:
            out.append(node)
        else:
            line = node.line
            shown = head or (node.text if isinstance(node, Atom) else node.source())
            valid = " ".join(sorted(allowed))
            chk.add(line, shown, f"unknown section '{shown}'; sections are ({valid} ...)")
    return out


def _keyword_args(node: SList) -> dict[str, Node]:
    out: dict[str, Node] = {}
    items = node.items[2:]
    for key, value in zip(items[::2], items[1::2], strict=False):
        if isinstance(key, Atom):
            out[key.text] = value
    return out


def check_domain(form: SList) -> tuple[Vocabulary, list[PddlIssue]]:
    """Check a domain read by :func:`read_sexpr` and collect its names."""
    vocab = Vocabulary()
    chk = _Checker("domain", vocab)
    vocab.name = _header(form, "domain", chk) or ""
    sections = _sections(form, _DOMAIN_SECTIONS, chk)
    by_head: dict[str, list[SList]] = {}
    for sec in sections:
        by_head.setdefault(sec.head() or "", []).append(sec)
    for sec in by_head.get(":types", []):
        declared = [(n, t, ln) for n, t, ln in _pairs(sec.items[1:])]
        for name, _parent, _ in declared:
            vocab.types.setdefault(name, None)
        for name, parent, line in declared:
            vocab.types[name] = parent
            chk.check_type(parent, line, "(:types ...)")
    for sec in by_head.get(":constants", []):
        vocab.constants.update({n: t for n, t, _ in chk.typed_list(sec.items[1:], "(:constants ...)")})
    for table, key in ((vocab.predicates, ":predicates"), (vocab.functions, ":functions")):
        for sec in by_head.get(key, []):
            for decl in sec.items[1:]:
                if isinstance(decl, SList) and decl.head():
                    table[decl.head() or ""] = [n for n, _, _ in chk.typed_list(decl.items[1:], f"({key} ...)")]
    for sec in by_head.get(":action", []) + by_head.get(":durative-action", []):
        _check_action(sec, chk)
    return vocab, chk.issues


def _pairs(items: list[Node]) -> list[tuple[str, str, int]]:
    """Like typed_list for (:types ...), without checking parents (they may be declared later)."""
    out: list[tuple[str, str, int]] = []
    pending: list[Atom] = []
    i = 0
    while i < len(items):
        node = items[i]
        if isinstance(node, Atom) and node.text == "-" and i + 1 < len(items) and isinstance(items[i + 1], Atom):
            parent = items[i + 1]
            assert isinstance(parent, Atom)
            out += [(a.text, parent.text, a.line) for a in pending]
            pending = []
            i += 2
            continue
        if isinstance(node, Atom):
            pending.append(node)
        i += 1
    out += [(a.text, "object", a.line) for a in pending]
    return out


def _check_action(sec: SList, chk: _Checker) -> None:
    if len(sec.items) < 2 or not isinstance(sec.items[1], Atom):
        chk.add(sec.line, None, f"{sec.source()}: an action needs a name, like (:action NAME :parameters (...) ...)")
        return
    name = sec.items[1].text
    fields = _keyword_args(sec)
    params_node = fields.get(":parameters", SList())
    params = chk.typed_list(params_node.items if isinstance(params_node, SList) else [], f"parameters of {name}")
    chk.vocab.actions[name] = [(p, t) for p, t, _ in params]
    scope = {p: t for p, t, _ in params}
    for key in (":precondition", ":condition", ":effect"):
        if key in fields:
            chk.formula(fields[key], scope, f"{key[1:]} of action {name}")


def check_problem(form: SList, vocab: Vocabulary) -> tuple[Vocabulary, list[PddlIssue]]:
    """Check a problem against its domain's vocabulary; returns the vocabulary plus objects."""
    full = Vocabulary(
        name=vocab.name,
        types=dict(vocab.types),
        constants=dict(vocab.constants),
        predicates=vocab.predicates,
        functions=vocab.functions,
        actions=vocab.actions,
    )
    chk = _Checker("problem", full)
    if _header(form, "problem", chk) is None:
        return full, chk.issues
    sections = {sec.head(): sec for sec in _sections(form, _PROBLEM_SECTIONS, chk)}
    dom = sections.get(":domain")
    if dom is None or len(dom.items) != 2 or not isinstance(dom.items[1], Atom):
        chk.add(form.line, ":domain", f"the problem needs (:domain {vocab.name or 'NAME'}) after its name")
    elif vocab.name and dom.items[1].text != vocab.name:
        chk.add(
            dom.line,
            dom.items[1].text,
            f"this problem is for domain '{dom.items[1].text}' but the domain given is '{vocab.name}'",
        )
    if ":objects" in sections:
        objects = chk.typed_list(sections[":objects"].items[1:], "(:objects ...)")
        full.constants.update({n: t for n, t, _ in objects})
    if ":init" in sections:
        for fact in sections[":init"].items[1:]:
            chk.formula(fact, {}, "(:init ...)")
    if ":goal" not in sections:
        chk.add(
            None, ":goal", "the problem has no (:goal ...) section; add one saying which facts must hold at the end"
        )
    else:
        goal = sections[":goal"].items[1:]
        if len(goal) != 1:
            chk.add(
                sections[":goal"].line, ":goal", "(:goal ...) must hold exactly one formula; wrap several in (and ...)"
            )
        for g in goal:
            chk.formula(g, {}, "(:goal ...)")
    return full, chk.issues
