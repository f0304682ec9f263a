"""Tiny models and tokenizers: deterministic, exact byte-level round trips, save/load unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reasonloop.errors import ConfigError, UnknownNameError
from reasonloop.policy.templates import CHATML_JSON, CHATML_TAGS
from reasonloop.policy.tiny_model import CHATML_SPECIAL_TOKENS, build_tiny_model, build_tiny_tokenizer, save_tiny

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SAMPLE = 'héllo wörld 你好 🙂\n\n  <tool_call>\n{"a": 12345}\n</tool_call><|im_end|>\n<|im_start|>x\tTab'


def test_tokenizer_is_deterministic_and_round_trips_any_text() -> None:
    a, b = build_tiny_tokenizer(vocab_size=400), build_tiny_tokenizer(vocab_size=400)
    assert a.get_vocab() == b.get_vocab()
    assert len(a) == 400
    ids = a.encode(SAMPLE, add_special_tokens=False)
    assert a.decode(ids, skip_special_tokens=False) == SAMPLE
    for special in CHATML_SPECIAL_TOKENS:  # kept whole, one id each
        assert a.encode(special, add_special_tokens=False) == [a.convert_tokens_to_ids(special)]
    assert a.eos_token == "<|im_end|>" and a.pad_token == "<|pad|>"
    assert a.chat_template == CHATML_JSON.source


def test_tokenizer_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="vocab_size"):
        build_tiny_tokenizer(vocab_size=100)
    with pytest.raises(ConfigError, match="special_tokens"):
        build_tiny_tokenizer(special_tokens=("<|im_end|>",))
    tags = build_tiny_tokenizer(chat_template=CHATML_TAGS.source)
    assert tags.chat_template == CHATML_TAGS.source


def test_model_weights_follow_the_seed_and_leave_the_global_rng_alone() -> None:
    tok = build_tiny_tokenizer()
    state = torch.random.get_rng_state()
    a, b, c = build_tiny_model(tok, seed=1), build_tiny_model(tok, seed=1), build_tiny_model(tok, seed=2)
    assert torch.equal(torch.random.get_rng_state(), state)
    pairs = list(zip(a.state_dict().values(), b.state_dict().values(), c.state_dict().values(), strict=True))
    assert all(torch.equal(x, y) for x, y, _ in pairs)
    assert not all(torch.equal(x, z) for x, _, z in pairs)
    assert a.config.hidden_size == 64 and a.config.num_hidden_layers == 2 and a.config.vocab_size == len(tok)
    assert not a.training


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_save_and_load_keep_weights_and_tokenisation(arch: str, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = build_tiny_tokenizer()
    model = build_tiny_model(tok, arch=arch, hidden=32, heads=2, kv_heads=1)
    path = save_tiny(model, tok, tmp_path / arch)
    tok2 = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model2 = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    text = SAMPLE * 3 + "It's 42, isn't it?  \r\n end"
    assert tok2.encode(text, add_special_tokens=False) == tok.encode(text, add_special_tokens=False)
    assert tok2.chat_template == tok.chat_template and tok2.eos_token == tok.eos_token
    ids = torch.tensor([tok.encode(text, add_special_tokens=False)])
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, model2(input_ids=ids).logits, atol=1e-6)


def test_model_options_are_checked() -> None:
    tok = build_tiny_tokenizer()
    with pytest.raises(UnknownNameError, match="llama, qwen2"):
        build_tiny_model(tok, arch="gpt5")
    with pytest.raises(ConfigError, match="divisible"):
        build_tiny_model(tok, hidden=30, heads=4)
    with pytest.raises(ConfigError, match=">= 1"):
        build_tiny_model(tok, layers=0)


def test_letter_names_encode_capitalised_words_letter_by_letter(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    corpus = ["Which firm does Zupar Thopoter work for? the firm works for Zupar"] * 20
    tok = build_tiny_tokenizer(corpus, vocab_size=300, letter_names=True)
    pieces = [tok.decode([i]) for i in tok.encode("Ask Zupar Thopoter, the firm", add_special_tokens=False)]
    assert pieces == ["A", "s", "k", " ", "Z", "u", "p", "a", "r", " ", "T", "h", "o", "p", "o", "t", "e", "r", ",",
                      " the", " firm"]
    plain = build_tiny_tokenizer(corpus, vocab_size=300)
    assert len(plain.encode(" Zupar", add_special_tokens=False)) < 5  # BPE pieces without the option
    assert tok.decode(tok.encode(SAMPLE, add_special_tokens=False), skip_special_tokens=False) == SAMPLE
    # Llama checkpoints load their tokenizer.json as it is, so the ids survive a save ...
    path = save_tiny(build_tiny_model(tok, arch="llama", hidden=32, heads=2, kv_heads=1), tok, tmp_path / "llama")
    loaded = AutoTokenizer.from_pretrained(path, local_files_only=True)
    assert loaded.encode(corpus[0], add_special_tokens=False) == tok.encode(corpus[0], add_special_tokens=False)
    # ... while transformers rebuilds a Qwen2 tokenizer's split rules: saving it is refused.
    with pytest.raises(ConfigError, match="letter_names"):
        save_tiny(build_tiny_model(tok, arch="qwen2", hidden=32, heads=2, kv_heads=1), tok, tmp_path / "qwen2")
