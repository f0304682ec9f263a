"""The Policy protocol: who writes the tokens.

An agent keeps a :class:`Context` in its graph state: the chat messages so far and,
for policies that tokenise (local models), the exact token ids of the context.
The agent never renders or tokenises anything itself; it asks the policy:

* ``start(messages, tools)`` once, for the prompt's token ids;
* ``generate(context, tools, sampling)`` for the next assistant turn;
* ``extend(context, new_messages, tools)`` for the forced ids of messages the
  environment appends (tool results, feedback), rendered alone, never by
  re-tokenising what the model already produced (token-in, token-out).

API policies return ``None`` from ``start``/``extend`` and leave ids empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from reasonloop.trajectory.schema import EntropyKind, ToolCall, Usage

__all__ = [
    "Completion",
    "Context",
    "Policy",
    "SamplingParams",
    "ToolFormat",
    "ToolSpec",
]

ToolFormat = Literal["openai", "tags", "json"]
"""How a policy expresses tool calls: OpenAI function calling (``openai``), XML-ish
tags named after the tool such as ``<python>code</python>`` (``tags``), or
``<tool_call>{"name": ..., "arguments": ...}</tool_call>`` JSON in the text (``json``)."""


@dataclass(frozen=True, kw_only=True)
class SamplingParams:
    """Sampling settings for one ``generate`` call."""

    temperature: float = 1.0
    """Softmax temperature; 0 means greedy."""
    top_p: float = 1.0
    """Nucleus mass kept, in (0, 1]."""
    max_tokens: int = 512
    """Upper bound on newly generated tokens."""
    stop: tuple[str, ...] = ()
    """Extra stop strings; the matched stop string is kept in the output."""
    seed: int | None = None
    """Seed for reproducible sampling (local policies honour it exactly)."""
    logprobs: bool = True
    """Ask for per-token log-probs where the back end can return them."""
    top_logprobs: int = 0
    """Ask API back ends for this many alternatives per token (top-k entropy)."""

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")
        if self.top_logprobs < 0:
            raise ValueError("top_logprobs must be >= 0")

    def as_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "stop": list(self.stop),
            "seed": self.seed,
            "logprobs": self.logprobs,
            "top_logprobs": self.top_logprobs,
        }


class ToolSpec(BaseModel):
    """What a policy needs to know about a tool: its name, description and schema."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})

    def openai_schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass(kw_only=True)
class Context:
    """The conversation as the policy sees it.

    ``token_ids`` is ``None`` for policies that do not tokenise (API models).
    """

    messages: list[dict[str, Any]] = field(default_factory=list)
    token_ids: list[int] | None = None

    def copy(self) -> Context:
        return Context(
            messages=[dict(m) for m in self.messages],
            token_ids=None if self.token_ids is None else list(self.token_ids),
        )


class Completion(BaseModel):
    """One assistant turn produced by a policy.

    ``token_ids``/``logprobs``/``entropies`` are aligned; API policies fill what the
    provider returns. ``tool_calls`` are the decoded calls; ``parse_errors`` the
    ones that could not be decoded (the agent shows those back to the model).
    """

    model_config = ConfigDict(ser_json_inf_nan="constants")

    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    parse_errors: list[str] = Field(default_factory=list)
    finish_reason: str | None = None
    token_ids: list[int] = Field(default_factory=list)
    logprobs: list[float] | None = None
    entropies: list[float] | None = None
    entropy_kind: EntropyKind = "none"
    top_k: int | None = None
    usage: Usage = Field(default_factory=Usage)
    model: str = ""
    cached: bool = False
    assistant_message: dict[str, Any] | None = None
    """The message to append to ``Context.messages`` (defaults to text + tool calls)."""

    def message(self) -> dict[str, Any]:
        if self.assistant_message is not None:
            return self.assistant_message
        msg: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            msg["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": _json_dumps(c.arguments)},
                }
                for c in self.tool_calls
            ]
        return msg


def _json_dumps(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


@runtime_checkable
class Policy(Protocol):
    """Anything that writes assistant turns."""

    @property
    def name(self) -> str:
        """A short identifier, recorded in trajectories (e.g. ``openai/gpt-4o-mini``)."""
        ...

    @property
    def tool_format(self) -> ToolFormat:
        """How this policy expects tools to be called."""
        ...

    def start(self, messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]) -> list[int] | None:
        """Token ids of the initial prompt (with the generation prompt), or ``None``."""
        ...

    def extend(
        self, context: Context, new_messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]
    ) -> list[int] | None:
        """Forced token ids that append ``new_messages`` (and the next generation
        prompt) to ``context``, rendered on their own; ``None`` if not tokenising."""
        ...

    async def generate(self, context: Context, tools: Sequence[ToolSpec], sampling: SamplingParams) -> Completion:
        """Sample the next assistant turn for ``context``."""
        ...
