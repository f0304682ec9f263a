"""Small random-init causal LMs and tokenizers, built locally from a config.

Tests, benchmarks and the embedded-model recipe need a real transformers model
without downloading one. :func:`build_tiny_tokenizer` trains a byte-level BPE on
the given texts (any string stays encodable, and decoding is exact) and wraps it as a
``PreTrainedTokenizerFast`` with the ChatML special tokens and a chat template;
:func:`build_tiny_model` builds a Qwen2 or Llama model from a config with seeded
weights. Both are deterministic given their inputs.

Importing this module imports nothing heavy; the builders import ``tokenizers``,
``transformers`` and ``torch`` when called.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reasonloop.errors import ConfigError, UnknownNameError
from reasonloop.policy.templates import CHATML_JSON

__all__ = [
    "CHATML_SPECIAL_TOKENS",
    "DEFAULT_CORPUS",
    "TINY_ARCHITECTURES",
    "build_tiny_model",
    "build_tiny_tokenizer",
    "save_tiny",
]

CHATML_SPECIAL_TOKENS: tuple[str, ...] = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>")
"""Special tokens of the tiny tokenizers: end of text, ChatML turn markers, padding."""

DEFAULT_CORPUS: tuple[str, ...] = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n",
    "<|im_start|>user\nWhat is 2 + 3? Use the calculator.<|im_end|>\n",
    '<|im_start|>assistant\n<tool_call>\n{"name": "calculator", "arguments": {"expression": "2 + 3"}}\n'
    "</tool_call><|im_end|>\n",
    "<|im_start|>user\n<tool_response>\n5\n</tool_response><|im_end|>\n",
    "<|im_start|>assistant\nThe sum is 5. <answer>5</answer><|im_end|>\n",
    "<python>print(sum(range(10)))</python> The answer is 45.",
    "def solve(x):\n    return x * 2 + 1\n",
)
"""A few lines of ChatML, tool calls and code: enough merges for short, readable ids."""

# Contractions, letter runs (with one leading non-letter), single digits, punctuation runs
# with their newlines, newline runs, other whitespace: the split Qwen2 tokenizers use.
_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Applied to each piece of the split above: a capitalised word becomes one piece per letter
# (its leading space or quote a piece of its own), every other piece stays whole. ``\G``
# anchors each match at the end of the previous one, so a piece not starting with a capital
# (or a space and a capital) is never entered.
_LETTER_NAMES_PATTERN = r"\G(?:[^\r\n\p{L}\p{N}](?=\p{Lu})|\p{Lu}|(?<=\p{L})\p{L})"


def build_tiny_tokenizer(
    texts: Sequence[str] = DEFAULT_CORPUS,
    *,
    vocab_size: int = 512,
    special_tokens: Sequence[str] = CHATML_SPECIAL_TOKENS,
    chat_template: str | None = CHATML_JSON.source,
    eos_token: str = "<|im_end|>",
    pad_token: str = "<|pad|>",
    letter_names: bool = False,
) -> Any:
    """Train a byte-level BPE on ``texts`` and wrap it for transformers.

    Args:
        texts: Training text; special tokens in it are kept whole.
        vocab_size: Target vocabulary size (at least the 256 bytes + special tokens).
        special_tokens: Tokens never split or merged (ChatML markers by default).
        chat_template: Jinja chat template stored on the tokenizer.
        eos_token: The token that ends an assistant turn.
        pad_token: The padding token.
        letter_names: Encode capitalised words letter by letter, as digits always are. A
            name never seen in training ("Zupar Thopoter") is then a sequence of common
            tokens, so a small model copies it the way it copies a number, instead of
            looking up rare BPE pieces.

    Returns:
        A ``transformers.PreTrainedTokenizerFast``.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = list(dict.fromkeys(special_tokens))
    for required in (eos_token, pad_token):
        if required not in specials:
            raise ConfigError(f"special_tokens must contain {required!r}")
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + len(specials):
        raise ConfigError(f"vocab_size must be >= {len(alphabet) + len(specials)} (bytes + special tokens)")
    tok = Tokenizer(models.BPE())
    # The Qwen2 pipeline (NFC, split regex, then bytes): transformers rebuilds a qwen2
    # checkpoint's tokenizer with exactly this, so a saved tiny model loads unchanged.
    tok.normalizer = normalizers.NFC()
    splits = [pre_tokenizers.Split(Regex(_SPLIT_PATTERN), behavior="isolated", invert=False)]
    if letter_names:
        splits.append(pre_tokenizers.Split(Regex(_LETTER_NAMES_PATTERN), behavior="isolated", invert=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [*splits, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=alphabet, show_progress=False
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=eos_token,
        pad_token=pad_token,
        additional_special_tokens=[s for s in specials if s not in (eos_token, pad_token)],
        clean_up_tokenization_spaces=False,
    )
    if chat_template is not None:
        wrapped.chat_template = chat_template
    return wrapped


def _qwen2(fields: dict[str, Any]) -> Any:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    return Qwen2ForCausalLM(Qwen2Config(**fields))


def _llama(fields: dict[str, Any]) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(LlamaConfig(**fields))


TINY_ARCHITECTURES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "qwen2": _qwen2,
    "llama": _llama,
}
"""Architecture name -> builder (config fields -> random-init model)."""


def build_tiny_model(
    tokenizer: Any,
    *,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int | None = None,
    intermediate: int | None = None,
    max_positions: int = 4096,
    arch: str = "qwen2",
    seed: int = 0,
) -> Any:
    """A random-init causal LM sized for ``tokenizer``, with weights drawn from ``seed``.

    Args:
        tokenizer: The tokenizer the model reads (its length sets the vocabulary).
        hidden: Hidden size; must be divisible by ``heads``.
        layers: Number of decoder layers.
        heads: Attention heads.
        kv_heads: Key/value heads (grouped-query attention); defaults to ``heads``.
        intermediate: MLP width; defaults to ``4 * hidden``.
        max_positions: Longest sequence the rotary embedding is configured for.
        arch: ``qwen2`` or ``llama`` (see :data:`TINY_ARCHITECTURES`).
        seed: Seed of the weight initialisation; the global RNG is left untouched.

    Returns:
        A ``transformers`` causal LM in float32, in eval mode.
    """
    import torch

    builder = TINY_ARCHITECTURES.get(arch)
    if builder is None:
        raise UnknownNameError("tiny architecture", arch, list(TINY_ARCHITECTURES))
    kv = heads if kv_heads is None else kv_heads
    if min(hidden, layers, heads, kv, max_positions) < 1:
        raise ConfigError("hidden, layers, heads, kv_heads and max_positions must be >= 1")
    if hidden % heads or heads % kv:
        raise ConfigError("hidden must be divisible by heads, and heads by kv_heads")
    fields: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "tie_word_embeddings": True,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "intermediate_size": intermediate or 4 * hidden,
        "max_position_embeddings": max_positions,
        "eos_token_id": int(tokenizer.eos_token_id),
        "pad_token_id": int(tokenizer.pad_token_id),
        "bos_token_id": int(tokenizer.convert_tokens_to_ids("<|endoftext|>")),
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = builder(fields)
    model.generation_config.eos_token_id = fields["eos_token_id"]
    model.generation_config.pad_token_id = fields["pad_token_id"]
    return model.float().eval()


def save_tiny(model: Any, tokenizer: Any, path: str | Path) -> Path:
    """Save ``model`` and ``tokenizer`` (with its chat template) to ``path``.

    The directory loads back with ``HFPolicy.from_pretrained(path)`` or the
    ``hf:PATH`` model string.
    """
    from transformers import AutoTokenizer

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    # transformers rebuilds some architectures' tokenizers from their own rules (Qwen2's
    # split regex, for one) instead of reading tokenizer.json: refuse a checkpoint that
    # would load with other ids than it was trained with.
    loaded = AutoTokenizer.from_pretrained(out, local_files_only=True)
    if _pieces(loaded) != _pieces(tokenizer) or (
        loaded.encode(_PROBE, add_special_tokens=False) != tokenizer.encode(_PROBE, add_special_tokens=False)
    ):
        raise ConfigError(
            f"{out}: transformers loads this tokenizer as {type(loaded).__name__} with other ids than it was "
            f"built with (a {model.config.model_type} checkpoint's split rules are rebuilt on load); "
            "use arch='llama' for a tokenizer with letter_names"
        )
    return out


def _pieces(tokenizer: Any) -> list[str]:
    pre = tokenizer.backend_tokenizer.pre_tokenizer
    return [] if pre is None else [piece for piece, _ in pre.pre_tokenize_str(_PROBE)]


_PROBE = "Which firm does Zupar Thopoter work for? It's 42, isn't it?\n  (at ball1 room2) {\"a\": 1}"
