"""Chat templates the local policies support, and the incremental rendering they need.

A chat template turns messages (and tool schemas) into the text a model reads. Local
policies keep the context as token ids, so after the first render they only ever
render what is *appended*: the tool results, the user's feedback and the next
generation prompt. :func:`render_appended` does that so that the text appended equals
what the full-conversation render would add after the tokens already in the context
(including the glue that closes an assistant turn the model left open, such as the
``<|im_end|>\\n`` after a turn that stopped on ``</tool_call>``).

Templates are Jinja sources rendered the way ``transformers`` renders them (a
sandboxed environment, ``trim_blocks``/``lstrip_blocks``, a ``tojson`` that does not
escape HTML), so a tokenizer's own ``chat_template`` renders here identically.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from reasonloop.errors import ConfigError, PolicyError, UnknownNameError
from reasonloop.policy.base import ToolFormat

__all__ = [
    "CHATML_JSON",
    "CHATML_TAGS",
    "SMOLLM2",
    "TINY_TAGS",
    "AppendedText",
    "ChatTemplate",
    "TemplateRegistry",
    "builtin_templates",
    "render",
    "render_appended",
    "render_segments",
    "turn_closing",
]

_TOOL_FORMATS = ("openai", "tags", "json")


@dataclass(frozen=True, kw_only=True)
class ChatTemplate:
    """A named chat template."""

    name: str
    """Registry key, e.g. ``chatml-json``."""
    source: str
    """The Jinja source (the same language as a tokenizer's ``chat_template``)."""
    tool_format: ToolFormat = "json"
    """How a model trained on this template writes tool calls."""
    turn_end_tokens: tuple[str, ...] = ()
    """Special tokens that end an assistant turn (generation stops when one is sampled)."""
    description: str = ""
    """One line for listings."""

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("ChatTemplate.name must not be empty")
        if not self.source.strip():
            raise ConfigError(f"ChatTemplate {self.name!r}: source must not be empty")
        if self.tool_format not in _TOOL_FORMATS:
            raise ConfigError(f"ChatTemplate {self.name!r}: tool_format must be one of {_TOOL_FORMATS}")


class TemplateRegistry:
    """Name -> :class:`ChatTemplate`; a fresh one per owner (no global state)."""

    def __init__(self, templates: Iterable[ChatTemplate] = ()) -> None:
        self._by_name: dict[str, ChatTemplate] = {}
        for template in templates:
            self.register(template)

    def register(self, template: ChatTemplate, *, replace: bool = False) -> None:
        """Add ``template``; re-registering a name needs ``replace=True``."""
        if template.name in self._by_name and not replace:
            raise ConfigError(f"chat template {template.name!r} is already registered")
        self._by_name[template.name] = template

    def get(self, name: str) -> ChatTemplate:
        """The template called ``name``; unknown names list the valid ones."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownNameError("chat template", name, list(self._by_name)) from None

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[ChatTemplate]:
        return iter([self._by_name[n] for n in self.names()])

    def __len__(self) -> int:
        return len(self._by_name)


# ChatML with Qwen2.5's tool convention: tool schemas listed in the system turn inside
# <tools>, calls as <tool_call>{"name", "arguments"}</tool_call> in the assistant turn,
# and consecutive tool results grouped in one user turn as <tool_response> blocks.
_CHATML_JSON_SOURCE = r"""
{%- set has_system = messages|length > 0 and messages[0].role == 'system' -%}
{%- set system_text = messages[0].content if has_system else 'You are a helpful assistant.' -%}
{%- if tools -%}
{{- '<|im_start|>system\n' + system_text + '\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>' -}}
{%- for spec in tools -%}{{- '\n' + (spec | tojson) -}}{%- endfor -%}
{{- '\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' -}}
{%- else -%}
{{- '<|im_start|>system\n' + system_text + '<|im_end|>\n' -}}
{%- endif -%}
{%- for message in messages -%}
{%- if message.role == 'system' and loop.first -%}
{%- elif message.role == 'tool' -%}
{%- if loop.first or messages[loop.index0 - 1].role != 'tool' -%}{{- '<|im_start|>user' -}}{%- endif -%}
{{- '\n<tool_response>\n' + message.content + '\n</tool_response>' -}}
{%- if loop.last or messages[loop.index0 + 1].role != 'tool' -%}{{- '<|im_end|>\n' -}}{%- endif -%}
{%- elif message.role == 'assistant' and message.tool_calls -%}
{{- '<|im_start|>assistant' -}}
{%- if message.content -%}{{- '\n' + message.content -}}{%- endif -%}
{%- for call in message.tool_calls -%}
{%- set fn = call.function if call.function is defined else call -%}
{%- set args = fn.arguments if fn.arguments is string else (fn.arguments | tojson) -%}
{{- '\n<tool_call>\n{"name": "' + fn.name + '", "arguments": ' + args + '}\n</tool_call>' -}}
{%- endfor -%}
{{- '<|im_end|>\n' -}}
{%- else -%}
{{- '<|im_start|>' + message.role + '\n' + (message.content or '') + '<|im_end|>\n' -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}
"""

# The turns shared by the tag-format ChatML templates (everything after the system turn's
# tool list): assistant tool calls written back as <NAME>args</NAME>, results in their own
# `tool` turn. Saved templates stay self-contained: the sources are joined here.
_CHATML_TAGS_TURNS = r"""
{{- '<|im_end|>\n' -}}
{%- for message in messages -%}
{%- if message.role == 'system' and loop.first -%}
{%- elif message.role == 'assistant' and message.tool_calls -%}
{{- '<|im_start|>assistant\n' + (message.content or '') -}}
{%- for call in message.tool_calls -%}
{%- set fn = call.function if call.function is defined else call -%}
{%- set args = fn.arguments if fn.arguments is string else (fn.arguments | tojson) -%}
{{- '<' + fn.name + '>' + args + '</' + fn.name + '>' -}}
{%- endfor -%}
{{- '<|im_end|>\n' -}}
{%- else -%}
{{- '<|im_start|>' + message.role + '\n' + (message.content or '') + '<|im_end|>\n' -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}
"""

# ChatML with tag tool calls (<python>code</python>): the tools are listed in the system turn.
_CHATML_TAGS_HEAD = r"""
{%- set has_system = messages|length > 0 and messages[0].role == 'system' -%}
{%- set system_text = messages[0].content if has_system else 'You are a helpful assistant.' -%}
{{- '<|im_start|>system\n' + system_text -}}
{%- if tools -%}
{{- '\n\n# Tools\n\nCall a tool by writing <NAME>input</NAME>, where NAME is the tool name and input is its text argument or a JSON object of its arguments. The result comes back in a tool turn.\n<tools>' -}}
{%- for spec in tools -%}{{- '\n' + (spec | tojson) -}}{%- endfor -%}
{{- '\n</tools>' -}}
{%- endif -%}
"""
_CHATML_TAGS_SOURCE = _CHATML_TAGS_HEAD + _CHATML_TAGS_TURNS.lstrip("\n")

CHATML_JSON = ChatTemplate(
    name="chatml-json",
    source=_CHATML_JSON_SOURCE.strip(),
    tool_format="json",
    turn_end_tokens=("<|im_end|>", "<|endoftext|>"),
    description="ChatML with Qwen2.5-style <tool_call> JSON calls and <tool_response> results",
)
CHATML_TAGS = ChatTemplate(
    name="chatml-tags",
    source=_CHATML_TAGS_SOURCE.strip(),
    tool_format="tags",
    turn_end_tokens=("<|im_end|>", "<|endoftext|>"),
    description="ChatML with tag tool calls (<python>...</python>) and results in a tool turn",
)


# The embedded tiny model's template: chatml-tags with the tools listed in one short
# line (name and argument names). A small model reads the prompt on every step, and the
# full JSON schemas would multiply its length without telling it anything it can use.
_TINY_TAGS_HEAD = r"""
{%- set has_system = messages|length > 0 and messages[0].role == 'system' -%}
{%- set system_text = messages[0].content if has_system else 'You are a helpful assistant.' -%}
{{- '<|im_start|>system\n' + system_text -}}
{%- if tools -%}
{{- '\n<tools>' -}}
{%- for spec in tools -%}
{%- set fn = spec.function if spec.function is defined else spec -%}
{{- ' ' + fn.name + '(' + (fn.parameters.properties | list | join(', ')) + ')' -}}
{%- endfor -%}
{{- ' </tools>' -}}
{%- endif -%}
"""
_TINY_TAGS_SOURCE = _TINY_TAGS_HEAD + _CHATML_TAGS_TURNS.lstrip("\n")

TINY_TAGS = ChatTemplate(
    name="tiny-tags",
    source=_TINY_TAGS_SOURCE.strip(),
    tool_format="tags",
    turn_end_tokens=("<|im_end|>", "<|endoftext|>"),
    description="chatml-tags with a one-line tool list (the embedded tiny model's template)",
)


# SmolLM2-Instruct's own chat template, verbatim from its tokenizer, so a SmolLM2
# tokenizer is recognised by source. It never renders tool schemas (the system prompt
# has to describe the tools), renders an assistant turn as its content (tool calls
# written in the text as tags) and a tool result as its own `tool` turn; with no
# system message first it inserts its default system turn.
_SMOLLM2_SOURCE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SMOLLM2 = ChatTemplate(
    name="smollm2",
    source=_SMOLLM2_SOURCE,
    tool_format="tags",
    turn_end_tokens=("<|im_end|>", "<|endoftext|>"),
    description="SmolLM2-Instruct's ChatML (its tokenizer's own): tag tool calls, results in a tool turn",
)


def builtin_templates() -> TemplateRegistry:
    """A new registry holding the templates shipped with the package."""
    return TemplateRegistry([CHATML_JSON, CHATML_TAGS, TINY_TAGS, SMOLLM2])


@functools.lru_cache(maxsize=32)
def _compile(source: str) -> Any:
    # Imported here: rendering is only needed by tokenising policies.
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(
        x: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None, sort_keys: bool = False
    ) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env.from_string(source)


def render(
    source: str,
    messages: Sequence[dict[str, Any]],
    tools: Sequence[dict[str, Any]] | None = None,
    *,
    add_generation_prompt: bool = False,
    **extra: Any,
) -> str:
    """Render ``messages`` with the Jinja template ``source``.

    Args:
        source: Jinja source of the chat template.
        messages: Chat messages (``role``, ``content``, optional ``tool_calls``).
        tools: OpenAI-style tool schemas, or ``None``.
        add_generation_prompt: Append the header of the next assistant turn.
        **extra: Further template variables (``bos_token``...).

    Raises:
        PolicyError: The template rejected the conversation (its message says why).
    """
    import jinja2

    try:
        return str(
            _compile(source).render(
                messages=list(messages),
                tools=list(tools) if tools else None,
                add_generation_prompt=add_generation_prompt,
                **extra,
            )
        )
    except jinja2.TemplateError as exc:
        raise PolicyError(f"chat template failed: {exc}") from exc


_PROBE_USER = "\x00probe-user\x00"
_PROBE_ASSISTANT = "\x00probe-assistant\x00"


@functools.lru_cache(maxsize=32)
def turn_closing(source: str) -> str | None:
    """The text a template writes after an assistant message's content (``<|im_end|>\\n``).

    Found by rendering a probe conversation, so it works for any template that
    renders a plain assistant message right after its generation prompt; ``None``
    when the template does not.
    """
    user = [{"role": "user", "content": _PROBE_USER}]
    try:
        head = render(source, user, add_generation_prompt=True)
        both = render(source, [*user, {"role": "assistant", "content": _PROBE_ASSISTANT}])
    except PolicyError:
        return None
    if not both.startswith(head + _PROBE_ASSISTANT):
        return None
    return both[len(head) + len(_PROBE_ASSISTANT) :]


@dataclass(frozen=True, kw_only=True)
class AppendedText:
    """What :func:`render_appended` found."""

    text: str
    """The text to tokenise and append to the context."""
    exact: bool
    """``True`` when context text + ``text`` equals the full-conversation render."""
    note: str = ""
    """Why the render is not exact, when it is not."""
    segments: tuple[tuple[str, bool], ...] = ()
    """``text`` cut into pieces, ``True`` on the new messages' contents: tokenise those
    as plain text, so a tool result that contains ``<|im_end|>`` cannot end a turn."""


@dataclass(frozen=True, kw_only=True)
class _Request:
    source: str
    context_text: str
    messages: Sequence[dict[str, Any]]
    tools: Sequence[dict[str, Any]] | None
    turn_end_tokens: Sequence[str]
    normalize: Callable[[str], str] | None
    extra: dict[str, Any]

    def render(self, messages: Sequence[dict[str, Any]], generation: bool) -> str:
        return render(self.source, messages, self.tools, add_generation_prompt=generation, **self.extra)


def render_appended(
    source: str,
    *,
    context_text: str,
    messages: Sequence[dict[str, Any]],
    new_messages: Sequence[dict[str, Any]],
    tools: Sequence[dict[str, Any]] | None = None,
    turn_end_tokens: Sequence[str] = (),
    normalize: Callable[[str], str] | None = None,
    **extra: Any,
) -> AppendedText:
    """The text that appends ``new_messages`` and the next generation prompt.

    The result is the part of the full-conversation render that follows
    ``context_text`` (the decoded context tokens), so context + appended renders
    exactly as the whole conversation would. When the context does not decode to a
    prefix of that render (a turn cut mid-character by ``max_tokens``, a template
    that rewrites earlier turns), the new messages are rendered after the history (or,
    failing that, after a minimal one) and glued on with whatever closes the open
    assistant turn; ``exact`` is then ``False``.

    Args:
        source: Jinja source of the chat template.
        context_text: The context token ids decoded (special tokens kept).
        messages: The conversation so far, ending with the last assistant message.
        new_messages: Messages to append (tool results, user feedback).
        tools: OpenAI-style tool schemas, as given to the first render.
        turn_end_tokens: Special tokens that end a turn (a sampled one needs no repeat).
        normalize: The tokenizer's text normaliser (e.g. NFC): the decoded context is
            normalised text, so the render is compared after normalising it too.
        **extra: Further template variables.

    Raises:
        PolicyError: The template renders the new messages as a rewrite of earlier text.
    """
    req = _Request(
        source=source, context_text=context_text, messages=list(messages), tools=tools,
        turn_end_tokens=turn_end_tokens, normalize=normalize, extra=extra,
    )  # fmt: skip
    found = _append(req, list(new_messages))
    if found is None:
        raise PolicyError(
            "chat template renders the appended messages by rewriting earlier turns; cannot append them as tokens"
        )
    text, exact, note = found
    return AppendedText(text=text, exact=exact, note=note, segments=_segments(req, list(new_messages), text))


def _append(req: _Request, new: list[dict[str, Any]]) -> tuple[str, bool, str] | None:
    full = req.render([*req.messages, *new], True)
    if full.startswith(req.context_text):
        return full[len(req.context_text) :], True, ""
    if req.normalize is not None:
        norm_full, norm_context = req.normalize(full), req.normalize(req.context_text)
        if norm_full.startswith(norm_context):
            return norm_full[len(norm_context) :], True, ""
    prior = req.render(req.messages, False)
    if full.startswith(prior):
        note = "the context tokens do not decode to a prefix of the conversation render"
        return _glue(req) + full[len(prior) :], False, note
    if req.messages and req.messages[-1].get("role") == "assistant":
        # Templates that rewrite history (Qwen3 drops the reasoning of turns before the
        # last user message): render the new messages after a plain probe exchange.
        base = [{"role": "user", "content": _PROBE_USER}, {"role": "assistant", "content": _PROBE_ASSISTANT}]
        prior, full = req.render(base, False), req.render([*base, *new], True)
        if full.startswith(prior):
            note = "the chat template rewrites earlier turns; new messages rendered after a probe exchange"
            return _glue(req) + full[len(prior) :], False, note
    return None


def _glue(req: _Request) -> str:
    """What closes the assistant turn the context ends in (nothing if it is closed)."""
    closing = turn_closing(req.source) or ""
    if closing and req.context_text.endswith(closing):
        return ""
    for token in req.turn_end_tokens:
        if token and closing.startswith(token) and req.context_text.endswith(token):
            return closing[len(token) :]
    return closing


_MARK = re.compile("\ue000(\\d+)\ue001")


def _marked(messages: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Any]]:
    contents = [m.get("content") for m in messages]
    marked = [
        {**m, "content": f"\ue000{i}\ue001"} if isinstance(c, str) and c else dict(m)
        for i, (m, c) in enumerate(zip(messages, contents, strict=True))
    ]
    return marked, contents


def _cut(
    marked_text: str | None, contents: list[Any], text: str, normalize: Callable[[str], str] | None = None
) -> tuple[tuple[str, bool], ...]:
    """Cut ``text`` where ``marked_text`` holds content markers; one plain piece if they disagree."""
    pieces: list[tuple[str, bool]] = []
    if marked_text is not None:
        at = 0
        for m in _MARK.finditer(marked_text):
            index = int(m.group(1))
            if index >= len(contents):  # a marker-like string outside the contents
                return ((text, False),)
            pieces += [(marked_text[at : m.start()], False), (str(contents[index]), True)]
            at = m.end()
        pieces.append((marked_text[at:], False))
    joined = "".join(p for p, _ in pieces)
    if joined != text and (normalize is None or normalize(joined) != text):
        return ((text, False),)  # the template transforms contents: no safe cut
    return tuple(p for p in pieces if p[0])


def _segments(req: _Request, new: list[dict[str, Any]], text: str) -> tuple[tuple[str, bool], ...]:
    """Locate the new messages' contents in ``text`` by rendering them as markers."""
    marked, contents = _marked(new)
    found = _append(req, marked)
    return _cut(None if found is None else found[0], contents, text, req.normalize)


def render_segments(
    source: str,
    messages: Sequence[dict[str, Any]],
    tools: Sequence[dict[str, Any]] | None = None,
    *,
    add_generation_prompt: bool = False,
    **extra: Any,
) -> tuple[tuple[str, bool], ...]:
    """:func:`render`, cut into pieces with ``True`` on the messages' contents.

    Tokenising the content pieces as plain text keeps a prompt that contains
    ``<|im_end|>`` from forging a turn boundary; a template that transforms the
    contents yields one plain piece.
    """
    text = render(source, messages, tools, add_generation_prompt=add_generation_prompt, **extra)
    marked, contents = _marked(messages)
    marked_text = render(source, marked, tools, add_generation_prompt=add_generation_prompt, **extra)
    return _cut(marked_text, contents, text)
