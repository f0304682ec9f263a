"""The sampling maths and the incremental decoder, on plain tensors and a real tokenizer."""

from __future__ import annotations

import math
import random

import pytest
import torch

from reasonloop.policy.hf_sampling import IncrementalDecoder, find_stop, token_distribution, top_p_probs
from reasonloop.policy.tiny_model import build_tiny_tokenizer


def test_token_distribution_scales_by_temperature() -> None:
    logits = torch.tensor([2.0, 1.0, 0.0, -math.inf])
    logp, entropy = token_distribution(logits, 0.5)
    expected = torch.log_softmax(torch.tensor([4.0, 2.0, 0.0, -math.inf]), dim=-1)
    assert torch.allclose(logp, expected)
    p = expected.exp()[:3]
    assert float(entropy) == pytest.approx(float(-(p * p.log()).sum()), abs=1e-6)  # -inf logit adds 0, not nan
    greedy_logp, _ = token_distribution(logits, 0.0)  # greedy is scored at temperature 1
    assert torch.allclose(greedy_logp, torch.log_softmax(logits, dim=-1))
    _, uniform = token_distribution(torch.zeros(8), 1.0)
    assert float(uniform) == pytest.approx(math.log(8), abs=1e-6)


def test_top_p_keeps_the_smallest_head_reaching_the_mass() -> None:
    probs = torch.tensor([0.1, 0.5, 0.3, 0.1])
    assert top_p_probs(probs, 0.5).tolist() == pytest.approx([0, 1, 0, 0])
    assert top_p_probs(probs, 0.6).tolist() == pytest.approx([0, 0.5 / 0.8, 0.3 / 0.8, 0])
    tie = top_p_probs(probs, 0.85)  # 0.5 + 0.3 < 0.85: one of the two 0.1 tokens joins
    assert int((tie > 0).sum()) == 3 and float(tie[1]) == pytest.approx(0.5 / 0.9)
    assert top_p_probs(probs, 1.0) is probs
    assert top_p_probs(probs, 1e-9).tolist() == pytest.approx([0, 1, 0, 0])  # the top token always stays


def test_find_stop_returns_the_earliest_match_after_the_start() -> None:
    assert find_stop("abc</x>def</y>", ("</y>", "</x>"), 0) == "</x>"
    assert find_stop("abc</x>def</y>", ("</y>", "</x>"), 5) == "</y>"
    assert find_stop("abc", ("</x>",), 0) is None


def test_incremental_decoder_matches_a_full_decode() -> None:
    tok = build_tiny_tokenizer()
    text = "naïve café 你好世界 🙂 <tool_call>{}</tool_call><|im_end|> done"
    rng = random.Random(0)
    ids = tok.encode(text, add_special_tokens=False) + [rng.randrange(len(tok)) for _ in range(200)]
    decoder = IncrementalDecoder(tok)
    pieces = [decoder.push(i) for i in ids]
    full = tok.decode(ids, skip_special_tokens=False)
    assert "".join(pieces) == decoder.text
    assert full.startswith(decoder.text) and len(full) - len(decoder.text) <= 2  # only a trailing partial char held
    assert decoder.text.startswith(text)


def test_incremental_decoder_releases_invalid_bytes_instead_of_waiting_forever() -> None:
    tok = build_tiny_tokenizer()
    continuation = next(i for i in range(len(tok)) if tok.decode([i]) == "\ufffd")
    decoder = IncrementalDecoder(tok)
    for _ in range(20):
        decoder.push(continuation)
    assert decoder.text.count("\ufffd") >= 12  # released once the hold-back limit is passed
