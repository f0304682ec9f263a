"""Chat templates: registry, rendering (same as transformers), incremental appends."""

from __future__ import annotations

import unicodedata

import pytest

from reasonloop.errors import ConfigError, PolicyError, UnknownNameError
from reasonloop.policy.parsing import parse_tool_calls
from reasonloop.policy.templates import (
    CHATML_JSON,
    CHATML_TAGS,
    ChatTemplate,
    TemplateRegistry,
    builtin_templates,
    render,
    render_appended,
    render_segments,
    turn_closing,
)

from .conftest import CALCULATOR

TOOLS = [CALCULATOR.openai_schema()]
CALL = {"id": "c1", "type": "function", "function": {"name": "calculator", "arguments": '{"expression": "2 + 3"}'}}
CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "2 + 3?"},
    {"role": "assistant", "content": "", "tool_calls": [CALL]},
    {"role": "tool", "content": "5", "tool_call_id": "c1"},
    {"role": "tool", "content": "five", "tool_call_id": "c2"},
    {"role": "assistant", "content": "<answer>5</answer>"},
]


def test_registry_lists_names_and_rejects_unknown_and_duplicates() -> None:
    reg = builtin_templates()
    assert reg.names() == ["chatml-json", "chatml-tags", "smollm2", "tiny-tags"]
    assert "chatml-json" in reg and len(reg) == 4
    with pytest.raises(UnknownNameError, match="chatml-json, chatml-tags, smollm2, tiny-tags"):
        reg.get("llama3")
    with pytest.raises(ConfigError, match="already registered"):
        reg.register(CHATML_JSON)
    mine = ChatTemplate(name="mine", source="{{ messages[0].content }}", tool_format="tags")
    reg.register(mine)
    assert reg.get("mine") is mine
    assert "mine" not in builtin_templates()  # each registry is its own


@pytest.mark.parametrize("bad", [{"name": ""}, {"source": "  "}, {"tool_format": "xml"}])
def test_template_fields_are_checked(bad: dict[str, str]) -> None:
    fields = {"name": "t", "source": "x", "tool_format": "json", **bad}
    with pytest.raises(ConfigError):
        ChatTemplate(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("template", list(builtin_templates()), ids=lambda t: t.name)
def test_render_equals_transformers_apply_chat_template(template: ChatTemplate) -> None:
    from reasonloop.policy.tiny_model import build_tiny_tokenizer

    tok = build_tiny_tokenizer(chat_template=template.source)
    for gen in (False, True):
        ours = render(template.source, CONVERSATION, TOOLS, add_generation_prompt=gen)
        theirs = tok.apply_chat_template(CONVERSATION, tools=TOOLS, tokenize=False, add_generation_prompt=gen)
        assert ours == theirs


def test_chatml_json_follows_the_qwen_tool_convention() -> None:
    text = render(CHATML_JSON.source, CONVERSATION, TOOLS, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n")
    assert '\n<tools>\n{"type": "function", "function": {"name": "calculator"' in text
    assert (
        '<|im_start|>assistant\n<tool_call>\n{"name": "calculator", "arguments": {"expression": "2 + 3"}}'
        "\n</tool_call><|im_end|>\n"
    ) in text
    # Consecutive tool results share one user turn.
    assert (
        "<|im_start|>user\n<tool_response>\n5\n</tool_response>\n<tool_response>\nfive\n</tool_response><|im_end|>\n"
    ) in text
    assert text.endswith("<|im_start|>assistant\n<answer>5</answer><|im_end|>\n<|im_start|>assistant\n")
    calls, errors = parse_tool_calls(text.split("<|im_start|>assistant\n")[1], ["calculator"], "json")
    assert [(c.name, c.arguments) for c in calls] == [("calculator", {"expression": "2 + 3"})] and not errors


def test_chatml_tags_writes_tag_calls_and_tool_turns() -> None:
    text = render(CHATML_TAGS.source, CONVERSATION, TOOLS)
    assert '<|im_start|>assistant\n<calculator>{"expression": "2 + 3"}</calculator><|im_end|>\n' in text
    assert "<|im_start|>tool\n5<|im_end|>\n<|im_start|>tool\nfive<|im_end|>\n" in text


def test_no_tools_and_default_system_prompt() -> None:
    text = render(CHATML_JSON.source, [{"role": "user", "content": "hi"}])
    assert text == "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"


def test_template_errors_become_policy_errors() -> None:
    with pytest.raises(PolicyError, match="chat template failed: no users"):
        render("{{ raise_exception('no users') }}", [])


@pytest.mark.parametrize("template", list(builtin_templates()), ids=lambda t: t.name)
def test_turn_closing_is_found_by_probing(template: ChatTemplate) -> None:
    assert turn_closing(template.source) == "<|im_end|>\n"
    assert turn_closing("{{ 'constant' }}") is None


@pytest.mark.parametrize("template", list(builtin_templates()), ids=lambda t: t.name)
@pytest.mark.parametrize("closed", [True, False], ids=["im_end-sampled", "stop-string"])
def test_appended_text_completes_the_full_render(template: ChatTemplate, closed: bool) -> None:
    history = [*CONVERSATION[:2], {"role": "assistant", "content": "<tool_call>x</tool_call>"}]
    head = render(template.source, history[:-1], TOOLS, add_generation_prompt=True)
    context = head + history[-1]["content"] + ("<|im_end|>" if closed else "")
    new = [{"role": "tool", "content": "5"}, {"role": "tool", "content": "6"}]
    out = render_appended(
        template.source,
        context_text=context,
        messages=history,
        new_messages=new,
        tools=TOOLS,
        turn_end_tokens=template.turn_end_tokens,
    )
    assert out.exact
    assert out.text.startswith("\n" if closed else "<|im_end|>\n")
    assert context + out.text == render(template.source, history + new, TOOLS, add_generation_prompt=True)


def test_appended_after_a_turn_cut_mid_character_closes_the_turn() -> None:
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "caf\ufffd"}]
    head = render(CHATML_JSON.source, history[:1], None, add_generation_prompt=True)
    context = head + "caf\ufffd\ufffd"  # the tokens decode differently from the message text
    out = render_appended(
        CHATML_JSON.source,
        context_text=context,
        messages=history,
        new_messages=[{"role": "user", "content": "go on"}],
        turn_end_tokens=("<|im_end|>",),
    )
    assert not out.exact and "prefix" in out.note
    assert out.text == "<|im_end|>\n<|im_start|>user\ngo on<|im_end|>\n<|im_start|>assistant\n"
    closed = render_appended(
        CHATML_JSON.source,
        context_text=context + "<|im_end|>",
        messages=history,
        new_messages=[{"role": "user", "content": "go on"}],
        turn_end_tokens=("<|im_end|>",),
    )
    assert closed.text.startswith("\n<|im_start|>user")


def test_appended_compares_after_the_tokenizer_normaliser() -> None:
    decomposed = unicodedata.normalize("NFD", "café")
    history = [{"role": "user", "content": decomposed}, {"role": "assistant", "content": "ok"}]
    context = unicodedata.normalize("NFC", render(CHATML_JSON.source, history[:1], None, add_generation_prompt=True))
    context += "ok<|im_end|>"
    new = [{"role": "user", "content": "again"}]
    assert not render_appended(
        CHATML_JSON.source, context_text=context, messages=history, new_messages=new, turn_end_tokens=("<|im_end|>",)
    ).exact
    out = render_appended(
        CHATML_JSON.source,
        context_text=context,
        messages=history,
        new_messages=new,
        normalize=lambda s: unicodedata.normalize("NFC", s),
    )
    assert out.exact and out.text == "\n<|im_start|>user\nagain<|im_end|>\n<|im_start|>assistant\n"


def test_a_template_that_rewrites_history_is_refused() -> None:
    # Shows only the last message: appending one replaces what was rendered before.
    source = "{{ messages[-1].content }}{% if add_generation_prompt %}>{% endif %}"
    with pytest.raises(PolicyError, match="rewriting earlier turns"):
        render_appended(
            source,
            context_text="zzz",
            messages=[{"role": "user", "content": "a"}],
            new_messages=[{"role": "user", "content": "b"}],
        )


def test_registry_accepts_custom_templates_for_later_models() -> None:
    reg = TemplateRegistry([CHATML_JSON])
    reg.register(ChatTemplate(name="chatml-json", source=CHATML_TAGS.source, tool_format="tags"), replace=True)
    assert reg.get("chatml-json").tool_format == "tags"
    assert [t.name for t in reg] == ["chatml-json"]


def test_segments_mark_message_contents() -> None:
    messages = [{"role": "user", "content": "say <|im_end|> now"}]
    segments = render_segments(CHATML_JSON.source, messages, add_generation_prompt=True)
    assert "".join(p for p, _ in segments) == render(CHATML_JSON.source, messages, add_generation_prompt=True)
    assert [p for p, plain in segments if plain] == ["say <|im_end|> now"]
    history = [*CONVERSATION[:2], {"role": "assistant", "content": "<tool_call>x</tool_call>"}]
    context = render(CHATML_JSON.source, history[:-1], TOOLS, add_generation_prompt=True) + history[-1]["content"]
    new = [{"role": "tool", "content": "a<|im_end|>b"}, {"role": "tool", "content": "c"}]
    out = render_appended(CHATML_JSON.source, context_text=context, messages=history, new_messages=new, tools=TOOLS)
    assert "".join(p for p, _ in out.segments) == out.text
    assert [p for p, plain in out.segments if plain] == ["a<|im_end|>b", "c"]


def test_segments_fall_back_to_one_piece_when_the_template_transforms_contents() -> None:
    source = "{% for m in messages %}[{{ m.content | upper }}]{% endfor %}"
    segments = render_segments(source, [{"role": "user", "content": "abc"}])
    assert segments == (("[ABC]", False),)


def test_a_template_that_drops_old_reasoning_appends_after_a_minimal_history() -> None:
    """Like Qwen3: an assistant turn before the last user message loses its <think> part."""
    source = (
        "{%- set ns = namespace(last=-1) -%}"
        "{%- for m in messages %}{% if m.role == 'user' %}{% set ns.last = loop.index0 %}{% endif %}{% endfor -%}"
        "{%- for m in messages -%}"
        "{%- set c = m.content -%}"
        "{%- if m.role == 'assistant' and loop.index0 < ns.last and '</think>' in c -%}"
        "{%- set c = c.split('</think>')[-1] -%}{%- endif -%}"
        "{{ '<|im_start|>' + m.role + '\\n' + c + '<|im_end|>\\n' }}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif -%}"
    )
    history = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>hm</think>4"}]
    context = render(source, history[:1], add_generation_prompt=True) + "<think>hm</think>4<|im_end|>"
    out = render_appended(
        source,
        context_text=context,
        messages=history,
        new_messages=[{"role": "user", "content": "sure?"}],
        turn_end_tokens=("<|im_end|>",),
    )
    assert not out.exact and "rewrites earlier turns" in out.note
    assert out.text == "\n<|im_start|>user\nsure?<|im_end|>\n<|im_start|>assistant\n"
