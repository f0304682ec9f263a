"""The HF engine: same samples as HFPolicy, shared prefixes encoded once, stale caches dropped."""

from __future__ import annotations

from typing import Any

import pytest

from reasonloop.policy.base import Context, SamplingParams, ToolSpec
from reasonloop.policy.hf_forward import cache_of

pytest.importorskip("torch")

SAMPLING = SamplingParams(temperature=1.0, max_tokens=10, seed=7)
MESSAGES = [{"role": "user", "content": "Code of 42?"}]


@pytest.fixture(scope="module")
def pair() -> tuple[Any, Any]:
    from reasonloop.policy.tiny_model import build_tiny_model, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    return tokenizer, build_tiny_model(tokenizer, seed=5)


def _engines(pair: tuple[Any, Any]) -> tuple[Any, Any, Any]:
    from reasonloop.policy.hf import HFPolicy, HFPolicyConfig
    from reasonloop.training.engine import HFEngine

    tokenizer, model = pair
    cfg = HFPolicyConfig(device="cpu")
    return HFPolicy(model, tokenizer, cfg), HFEngine(model, tokenizer, cfg), HFEngine(model, tokenizer, cfg, prefix_reuse=False)


def _tree(policy: Any, tools: list[ToolSpec]) -> list[Any]:
    """A root turn, a continuation after a forced message, and two sibling branches of that context."""
    prompt = policy.start(MESSAGES, tools)
    first = policy.complete(Context(messages=list(MESSAGES), token_ids=prompt), tools, SAMPLING)
    ctx = Context(messages=[*MESSAGES, first.message()], token_ids=prompt + first.token_ids)
    forced = policy.extend(ctx, [{"role": "user", "content": "Go on."}], tools)
    ctx = Context(messages=[*ctx.messages, {"role": "user", "content": "Go on."}], token_ids=ctx.token_ids + forced)
    out = [first]
    for seed in (1, 2, 3):
        out.append(policy.complete(ctx, tools, SamplingParams(temperature=1.0, max_tokens=10, seed=seed)))
    return out


def test_engine_samples_what_hfpolicy_samples(pair: tuple[Any, Any]) -> None:
    plain, cached, uncached = _engines(pair)
    want = _tree(plain, [])
    for engine in (cached, uncached):
        got = _tree(engine, [])
        assert [c.token_ids for c in got] == [c.token_ids for c in want]
        for a, b in zip(got, want, strict=True):
            assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
            assert a.entropies == pytest.approx(b.entropies, abs=1e-4)


def test_shared_prefixes_are_encoded_once(pair: tuple[Any, Any]) -> None:
    _, cached, uncached = _engines(pair)
    got = _tree(cached, [])
    _tree(uncached, [])
    first = got[0]
    prompt_len = len(cached.start(MESSAGES, []))
    # Call 2 continues the root: everything the root call encoded is reused
    # (prompt + its sampled ids except the last, which was never fed back).
    # Calls 3 and 4 share call 2's whole prompt.
    s, u = cached.stats, uncached.stats
    assert s.calls == u.calls == 4 and s.prompt_tokens == u.prompt_tokens
    second_prompt = (s.prompt_tokens - prompt_len) // 3
    assert s.reused_tokens == (prompt_len + len(first.token_ids) - 1) + 2 * (second_prompt - 1)
    assert u.reused_tokens == 0
    assert s.computed_tokens == u.computed_tokens - s.reused_tokens
    assert s.computed_tokens < u.computed_tokens / 2


def test_sync_weights_drops_stale_caches(pair: tuple[Any, Any]) -> None:
    _, cached, _ = _engines(pair)
    _tree(cached, [])
    cached.sync_weights()
    cached.stats.reset()
    prompt = cached.start(MESSAGES, [])
    cached.complete(Context(messages=list(MESSAGES), token_ids=prompt), [], SAMPLING)
    assert cached.stats.reused_tokens == 0 and cached.stats.computed_tokens >= len(prompt)


def test_prefix_cache_keeps_the_newest_entries(pair: tuple[Any, Any]) -> None:
    import torch

    from reasonloop.training.engine import PrefixCache

    _, model = pair
    cache = PrefixCache(max_entries=2)
    for start in (5, 6, 7):
        ids = list(range(start, start + 8))
        with torch.inference_mode():
            cache.put(ids, cache_of(model(input_ids=torch.tensor([ids]), use_cache=True)))
    assert len(cache) == 2
    assert cache.longest_prefix(list(range(5, 20)))[0] == 0  # evicted
    n, kv = cache.longest_prefix([6, 7, 8, 9, 99])
    assert n == 4 and kv.get_seq_length() == 4
    n, kv = cache.longest_prefix(list(range(7, 15)))  # whole key: one token left to feed
    assert n == 7 and kv.get_seq_length() == 7


def test_prompt_memo_tokenises_each_distinct_prompt_once(pair: tuple[Any, Any]) -> None:
    from reasonloop.policy.hf import HFPolicy, HFPolicyConfig
    from reasonloop.training.engine import PromptMemo

    tokenizer, model = pair
    policy = HFPolicy(model, tokenizer, HFPolicyConfig(device="cpu"))
    calls: list[int] = []

    def start(messages: Any, tools: Any) -> list[int]:
        calls.append(1)
        return policy.start(messages, tools)

    memo = PromptMemo(start, max_entries=2)
    tool = ToolSpec(name="lookup", description="Look a code up.", parameters={"type": "object", "properties": {}})
    want = policy.start(MESSAGES, [tool])
    first = memo(MESSAGES, [tool])
    first.append(-1)  # the caller owns its list: the memo's entry is unchanged
    assert memo(list(MESSAGES), [tool]) == want and len(calls) == 1
    assert memo(MESSAGES, []) == policy.start(MESSAGES, []) and len(calls) == 2  # other tools: other ids
    memo(MESSAGES, [tool])  # a hit makes it the most recent
    memo([{"role": "user", "content": "Hi"}], [])  # a third prompt evicts the least recent: (MESSAGES, [])
    memo(MESSAGES, [tool])
    assert len(calls) == 3
    memo(MESSAGES, [])
    assert len(calls) == 4
    odd = [{"role": "user", "content": object()}]  # not plain data: never memoised, passed through

    def plain(messages: Any, tools: Any) -> list[int]:
        calls.append(1)
        return [1, 2]

    assert PromptMemo(plain)(odd, []) == [1, 2] and PromptMemo(plain)(odd, []) == [1, 2] and len(calls) == 6
    with pytest.raises(Exception, match="max_entries"):
        PromptMemo(plain, max_entries=0)
