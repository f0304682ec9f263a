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


def test_shared_prefixes_encoded_once_sample_as_single_rows_do() -> None:
    from reasonloop.policy.hf import HFPolicy, HFPolicyConfig
    from reasonloop.policy.hf_sampling import sample_tokens
    from reasonloop.policy.tiny_model import build_tiny_model, build_tiny_tokenizer
    from reasonloop.training.batched import sample_batch

    tokenizer = build_tiny_tokenizer()
    model = build_tiny_model(tokenizer, seed=4)
    policy = HFPolicy(model, tokenizer, HFPolicyConfig(device="cpu"))
    base = policy.start([{"role": "user", "content": "Code of 42? Use the tool."}], [])
    other = policy.start([{"role": "user", "content": "Hi"}], [])
    # Identical prompts, extensions of one, a one-token prompt, a prompt sharing one token.
    prompts = [base, base, [*base, 7, 8, 9], base[:5], [5], other, base + other, base, [*base[:1], 11], base,
               [*base, 7, 8, 9, 10]]

    def settings() -> list[object]:
        return [policy.loop_settings(p, [], SamplingParams(temperature=1.0, max_tokens=10, seed=s))
                for s, p in enumerate(prompts)]

    got, computed = sample_batch(model, tokenizer, prompts, settings(), int(tokenizer.pad_token_id))
    assert computed < len(prompts) * max(len(p) for p in prompts)  # the shared prefixes were encoded once
    for prompt, s, g in zip(prompts, settings(), got, strict=True):
        want = sample_tokens(model, tokenizer, prompt, s)
        assert g.token_ids == want.token_ids and g.finish_reason == want.finish_reason
        assert g.logprobs == pytest.approx(want.logprobs, abs=1e-4)


def test_a_rows_token_depends_on_its_generator_only() -> None:
    import torch

    from reasonloop.policy.hf_sampling import LoopSettings, pick_tokens

    def row(seed: int, temperature: float = 1.0, top_p: float = 1.0) -> LoopSettings:
        return LoopSettings(temperature=temperature, top_p=top_p, max_tokens=1, stop_ids=frozenset(), stop_strings=(),
                            generator=torch.Generator().manual_seed(seed))

    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(0)) * 3
    alone = [pick_tokens(logits[i : i + 1], [row(i, 0.7 * i)])[0][0] for i in range(4)]
    together, logps, ents = pick_tokens(logits, [row(i, 0.7 * i) for i in range(4)])
    assert together == alone
    assert together[0] == int(logits[0].argmax())  # temperature 0: greedy
    for i in (1, 2, 3):  # the same draw torch.multinomial makes from the same generator
        probs = torch.softmax(logits[i] / (0.7 * i), -1)
        assert together[i] == int(torch.multinomial(probs, 1, generator=torch.Generator().manual_seed(i)))
        assert logps[i] == pytest.approx(float(probs[together[i]].log()), abs=1e-5)
        assert ents[i] == pytest.approx(float(-(probs * probs.log()).sum()), abs=1e-4)
    nucleus, _, _ = pick_tokens(logits[1:2], [row(1, 1.0, 1e-6)])
    assert nucleus == [int(logits[1].argmax())]  # top-p keeps the top token only
