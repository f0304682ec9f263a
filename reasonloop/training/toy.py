"""Generated tool-use tasks small enough to train a tiny model on a CPU in seconds.

``lookup``: "What is the code of key 37?" The codes come from a keyed hash, so the
only reliable way to answer is to call ``lookup(37)`` and copy its result into
``<answer>``. ``chain``: two lookups, the first result being the key of the second
(a multi-step task where a trajectory may call the tool once, twice or more).

Both come with scripted experts (the correct calls, then the answer), so a tiny
model can be warm-started by SFT on expert trajectories before RL.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from reasonloop.bench.task import ExpertTurn, Task
from reasonloop.tools.base import Tool, tool
from reasonloop.trajectory.schema import ToolResult, ToolStatus

__all__ = ["chain_tasks", "code_of", "lookup_tasks", "lookup_tool", "toy_corpus", "toy_policy_pair", "with_unclosed_answers"]


def code_of(key: str, salt: str = "rl") -> str:
    """The one-digit code of ``key`` (a keyed hash: not learnable without the tool)."""
    digest = hashlib.sha256(f"{salt}/{key.strip()}".encode()).digest()
    return str(digest[0] % 10)


def lookup_tool(salt: str = "rl") -> Tool:
    """The ``lookup`` tool: the code of a key."""

    @tool(name="lookup", timeout_s=5.0)
    def lookup(key: str) -> ToolResult:
        """Return the code of a key.

        Args:
            key: A key, e.g. 37.
        """
        if not key.strip().isdigit():
            return ToolResult(status=ToolStatus.ERROR, error=f"unknown key {key.strip()[:20]!r}: keys are numbers")
        return ToolResult(status=ToolStatus.OK, output=code_of(key, salt))

    return lookup


def lookup_tasks(n: int, *, seed: int = 0, salt: str = "rl") -> list[Task]:
    """``n`` one-lookup tasks (deterministic for a seed)."""
    rng = random.Random(f"lookup/{seed}")
    tasks = []
    for i in range(n):
        key = str(rng.randint(10, 99))
        code = code_of(key, salt)
        tasks.append(Task(
            id=f"lookup-{seed}-{i}", suite="lookup", prompt=f"Code of {key}?", answer=code,
            tools=["lookup"], verifier="exact",
            expert=[ExpertTurn(tool_calls=[("lookup", {"key": key})]), ExpertTurn(text=f"<answer>{code}</answer>")],
            metadata={"key": key},
        ))
    return tasks


def chain_tasks(n: int, *, seed: int = 0, salt: str = "rl") -> list[Task]:
    """``n`` two-lookup tasks: the code of the code of a key."""
    rng = random.Random(f"chain/{seed}")
    tasks = []
    for i in range(n):
        key = str(rng.randint(10, 99))
        mid = code_of(key, salt)
        code = code_of(mid, salt)
        tasks.append(Task(
            id=f"chain-{seed}-{i}", suite="chain", prompt=f"Code of code of {key}?", answer=code,
            tools=["lookup"], verifier="exact",
            expert=[ExpertTurn(tool_calls=[("lookup", {"key": key})]), ExpertTurn(tool_calls=[("lookup", {"key": mid})]),
                    ExpertTurn(text=f"<answer>{code}</answer>")],
            metadata={"key": key},
        ))
    return tasks


def toy_corpus() -> list[str]:
    """Text to train a tiny tokenizer on: the prompts, calls and answers of both families."""
    lines = ["<lookup>", "</lookup>", "<answer>", "</answer>", "Code of code of ", "Code of ?"]
    lines += [f"<lookup>{k}</lookup><answer>{k}</answer>" for k in range(10, 100)]
    return lines


def toy_policy_pair(*, hidden: int = 64, layers: int = 2, heads: int = 4, seed: int = 0,
                    template: str = "chatml-tags") -> tuple[Any, Any]:
    """A tiny tokenizer trained on the toy tasks' rendered prompts, and a random-init model.

    Returns:
        ``(tokenizer, model)``; wrap them in an :class:`~reasonloop.training.engine.HFEngine`
        with ``HFPolicyConfig(template=template)``.
    """
    from reasonloop.policy.templates import builtin_templates, render
    from reasonloop.policy.tiny_model import DEFAULT_CORPUS, build_tiny_model, build_tiny_tokenizer

    source = builtin_templates().get(template).source
    schema = [lookup_tool().spec.openai_schema()]
    rendered = [render(source, [{"role": "user", "content": t.prompt}], schema) for t in lookup_tasks(4) + chain_tasks(4)]
    tokenizer = build_tiny_tokenizer([*DEFAULT_CORPUS, *toy_corpus(), *rendered], vocab_size=512, chat_template=source)
    return tokenizer, build_tiny_model(tokenizer, hidden=hidden, layers=layers, heads=heads, max_positions=1024, seed=seed)


def with_unclosed_answers(tasks: list[Task], every: int = 2) -> list[Task]:
    """Copies of ``tasks`` where every ``every``-th expert forgets ``</answer>``.

    A warm start on this mix leaves a policy that closes its answer tag about half of
    the time, a format habit that RL with the paper's -1-on-bad-format reward has to
    fix (the kind of slip small models make).
    """
    out = []
    for i, task in enumerate(tasks):
        copy = task.model_copy(deep=True)
        if i % every == every - 1 and copy.expert:
            last = copy.expert[-1]
            copy.expert[-1] = ExpertTurn(text=last.text.replace("</answer>", ""), tool_calls=list(last.tool_calls))
        out.append(copy)
    return out
