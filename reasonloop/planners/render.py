"""Plans and states to natural language, and loosely written plans back to actions.

Models write plans as ``(pick-up a)``, ``pick-up(a)``, ``pick-up a``, ``1. pick up
block a`` or ``Step 2: stack a on b``. :func:`read_plan` accepts all of these when it
can resolve every step to one action and objects of the task without guessing, and
otherwise names the step and the unknown word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from reasonloop.planners.checks import Vocabulary
from reasonloop.planners.result import PddlIssue

__all__ = ["ActionCall", "read_plan", "render_plan", "render_state", "split_action"]

_FILLERS = frozenset(
    [
        "the",
        "a",
        "an",
        "then",
        "next",
        "finally",
        "now",
        "first",
        "and",
        "up",
        "down",
        "from",
        "on",
        "onto",
        "to",
        "top",
        "of",
        "in",
        "into",
        "with",
        "at",
        "using",
        "by",
        "it",
        "off",
        "table",
        "hand",
        "arm",
        "place",
        "put",
        "move",
        "block",
        "ball",
        "room",
        "truck",
        "airplane",
        "plane",
        "package",
        "city",
        "location",
        "airport",
    ]
)
_NUMBERING = re.compile(r"^\s*(?:[-*•]\s*)?(?:step\s*)?(?:\d+(?:\.\d+)?\s*[.):\-]?\s*)?", re.IGNORECASE)
_DURATION = re.compile(r"\[\s*\d+(?:\.\d+)?\s*\]\s*$")
_GROUP = re.compile(r"\([^()]*\)")
_WORD = re.compile(r"[^\s(),;]+")
_MAX_NAME_WORDS = 4


@dataclass(frozen=True, slots=True)
class ActionCall:
    """One grounded action."""

    name: str
    args: tuple[str, ...]

    def pddl(self) -> str:
        """PDDL syntax, e.g. ``(stack a b)``."""
        return "(" + " ".join((self.name, *self.args)) + ")"


def split_action(text: str) -> ActionCall:
    """Split ``(stack a b)`` or ``stack(a, b)`` into name and arguments (no checks)."""
    words = _WORD.findall(text.lower())
    return ActionCall(words[0] if words else "", tuple(words[1:]))


def _key(text: str) -> str:
    return re.sub(r"[-_\s]", "", text.lower())


def _plan_lines(plan: str | Sequence[str]) -> list[tuple[int, str]]:
    """(source line, step text) pairs; a line holding several ``(...)`` groups gives several steps."""
    lines = plan.splitlines() if isinstance(plan, str) else [str(p) for p in plan]
    out: list[tuple[int, str]] = []
    for number, raw in enumerate(lines, 1):
        text = raw.split(";", 1)[0].strip()
        text = _DURATION.sub("", text).strip()
        if not text or (text.endswith(":") and "(" not in text):
            continue  # blank lines, comments, headers such as "Plan:"
        groups = _GROUP.findall(text)
        if len(groups) > 1 and _GROUP.sub("", text).strip(" \t,.;0-9:") == "":
            out += [(number, g) for g in groups]
        else:
            out.append((number, text))
    return out


def _match_action(words: list[str], keys: Mapping[str, str]) -> tuple[str, int] | None:
    """Find the action named by the first words (after leading filler words); returns (action, words used)."""
    for start in range(len(words)):
        for k in range(min(_MAX_NAME_WORDS, len(words) - start), 0, -1):
            name = keys.get(_key("".join(words[start : start + k])))
            if name is not None:
                return name, start + k
        if words[start] not in _FILLERS:
            break
    return None


def _read_step(step: int, line: int, text: str, vocab: Vocabulary, keys: Mapping[str, str]) -> ActionCall | PddlIssue:
    body = _NUMBERING.sub("", text, count=1).strip().rstrip(".")
    words = [w.strip(".:!?'\"").lower() for w in _WORD.findall(body)]
    words = [w for w in words if w]
    found = _match_action(words, keys)
    if found is None:
        actions = ", ".join(sorted(vocab.actions))
        first = words[0] if words else text
        return PddlIssue(
            file="plan",
            line=line,
            symbol=first,
            message=f"step {step} ({text!r}): unknown action '{first}'; the actions are {actions}",
        )
    name, used = found
    params = vocab.actions[name]
    args = [w for w in words[used:] if w in vocab.constants]
    unknown = [w for w in words[used:] if w not in vocab.constants and w not in _FILLERS and w not in vocab.types]
    if len(args) != len(params):
        detail = f"; unknown object(s): {', '.join(repr(u) for u in unknown)}" if unknown else ""
        objs = ", ".join(sorted(vocab.constants)[:30])
        signature = " ".join(p for p, _ in params)
        return PddlIssue(
            file="plan",
            line=line,
            symbol=unknown[0] if unknown else name,
            message=f"step {step} ({text!r}): {name} takes {len(params)} object(s) ({signature}) but "
            f"{len(args)} known object(s) were given{detail}; objects are {objs}",
        )
    return ActionCall(name, tuple(args))


def read_plan(plan: str | Sequence[str], vocab: Vocabulary) -> list[ActionCall] | list[PddlIssue]:
    """Read a plan written in any of the usual forms.

    Args:
        plan: The plan as text (one step per line) or as a list of steps.
        vocab: Actions and objects of the task (from :func:`reasonloop.planners.parse.check_task`).

    Returns:
        The actions, or one issue per unreadable step.
    """
    keys = {_key(name): name for name in vocab.actions}
    calls: list[ActionCall] = []
    issues: list[PddlIssue] = []
    for step, (line, text) in enumerate(_plan_lines(plan), 1):
        got = _read_step(step, line, text, vocab, keys)
        if isinstance(got, PddlIssue):
            issues.append(got)
        else:
            calls.append(got)
    return issues or calls


def _phrase(call: ActionCall, templates: Mapping[str, str]) -> str:
    template = templates.get(call.name)
    if template is not None:
        try:
            return template.format(*call.args)
        except (IndexError, KeyError):
            pass
    return " ".join((call.name.replace("-", " ").replace("_", " "), *call.args))


def render_plan(plan: Sequence[str], templates: Mapping[str, str] | None = None) -> str:
    """Number the steps of a plan and phrase each one.

    Args:
        plan: Actions in PDDL syntax, e.g. ``["(pick-up a)", "(stack a b)"]``.
        templates: Action name -> phrase with ``{0}``, ``{1}``... for the arguments, in order
            (so :func:`read_plan` reads the phrase back); missing names fall back to the
            action name in words.

    Returns:
        One line per step, e.g. ``"1. pick up a"``.
    """
    if not plan:
        return "No actions are needed: the goal already holds."
    tmpl = templates or {}
    return "\n".join(f"{i}. {_phrase(split_action(a), tmpl)}" for i, a in enumerate(plan, 1))


def render_state(atoms: Iterable[str], templates: Mapping[str, str] | None = None) -> str:
    """Phrase the true atoms of a state, one sentence each, e.g. ``"a is on b."``."""
    tmpl = templates or {}
    sentences = [_phrase(split_action(a), tmpl) for a in sorted(atoms)]
    return " ".join(s + "." for s in sentences if s) or "Nothing is true."
