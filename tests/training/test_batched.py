"""The batched engine: concurrent turns sampled together, each as HFPolicy samples it alone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reasonloop.policy.base import Context, SamplingParams

pytest.importorskip("torch")


def test_concurrent_turns_match_single_turn_sampling() -> None:
    from reasonloop.policy.hf import HFPolicy, HFPolicyConfig
    from reasonloop.policy.tiny_model import build_tiny_model, build_tiny_tokenizer
    from reasonloop.training.batched import BatchedHFEngine

    tokenizer = build_tiny_tokenizer()
    model = build_tiny_model(tokenizer, seed=4)
    cfg = HFPolicyConfig(device="cpu")
    single, batched = HFPolicy(model, tokenizer, cfg), BatchedHFEngine(model, tokenizer, cfg)
    prompts = [[{"role": "user", "content": text}] for text in ("Hi", "Code of 42? Use the tool.", "2 + 3 = ?")]
    jobs = [(single.start(m, []), SamplingParams(temperature=t, max_tokens=n, seed=s, stop=stop))
            for m, (t, n, s, stop) in zip(prompts * 2, [(1.0, 9, 1, ()), (0.7, 5, 2, ()), (0.0, 7, 3, ()),
                                                         (1.0, 12, 4, ("e",)), (1.0, 3, 5, ()), (1.3, 8, 6, ())],
                                          strict=True)]

    async def together() -> list[Any]:
        return list(await asyncio.gather(*(batched.generate(Context(token_ids=ids), [], sp) for ids, sp in jobs)))

    got = asyncio.run(together())
    want = [single.complete(Context(token_ids=ids), [], sp) for ids, sp in jobs]
    assert batched.stats.calls == 6 and batched.stats.computed_tokens > 0
    for g, w in zip(got, want, strict=True):
        assert g.token_ids == w.token_ids and g.finish_reason == w.finish_reason and g.text == w.text
        assert g.logprobs == pytest.approx(w.logprobs, abs=1e-4)
        assert g.entropies == pytest.approx(w.entropies, abs=1e-4)
