"""reasonloop.policy.hf_forward: a KV cache handed to and read back from a real model whatever transformers
calls it, and logits_to_keep passed only where the model takes it."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")


def test_cache_round_trip_matches_a_full_forward_and_raises_no_deprecation(tiny_policy) -> None:  # type: ignore[no-untyped-def]
    from reasonloop.policy.hf_forward import cache_kwarg, cache_of, with_cache

    model = tiny_policy.model
    assert cache_kwarg(model) in ("cache", "past_key_values")
    assert with_cache(model, None) == {}
    ids = torch.tensor([[5, 9, 14, 3, 7]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the deprecated spelling would warn here
        first = model(input_ids=ids[:, :3], use_cache=True)
        cache = cache_of(first)
        assert cache is not None
        step = model(input_ids=ids[:, 3:], use_cache=True, **with_cache(model, cache))
    full = model(input_ids=ids).logits
    assert torch.allclose(step.logits, full[:, 3:], atol=1e-5)
    assert cache_of({"logits": full}) is None


def test_cache_kwarg_asks_the_model_a_wrapper_holds() -> None:
    from reasonloop.policy.hf_forward import cache_kwarg

    class Old:
        def forward(self, input_ids=None, past_key_values=None, **kwargs):  # type: ignore[no-untyped-def]
            return None

    class New:
        def forward(self, input_ids=None, cache=None, **kwargs):  # type: ignore[no-untyped-def]
            return None

    class Wrapper:  # peft's LoRA model: forward(**kwargs), get_base_model()
        def __init__(self, base: object) -> None:
            self.base = base

        def forward(self, **kwargs):  # type: ignore[no-untyped-def]
            return None

        def get_base_model(self) -> object:
            return self.base

    assert cache_kwarg(Old()) == "past_key_values" and cache_kwarg(New()) == "cache"
    assert cache_kwarg(Wrapper(New())) == "cache" and cache_kwarg(Wrapper(Old())) == "past_key_values"


def test_cache_kwarg_of_a_delegating_wrapper_is_its_models() -> None:
    from reasonloop.policy.hf_forward import cache_kwarg

    class New:
        def forward(self, input_ids=None, cache=None):  # type: ignore[no-untyped-def]
            return None

    class Delegating:  # forwards attribute reads, as PrefixReuseModel does; has no forward of its own
        def __init__(self, module: object) -> None:
            self.module = module

        def __getattr__(self, name: str) -> object:
            return getattr(self.module, name)

    assert cache_kwarg(Delegating(New())) == "cache"


def test_keep_logits_only_where_the_model_takes_it(tiny_policy) -> None:  # type: ignore[no-untyped-def]
    from reasonloop.policy.hf_forward import keep_logits, takes_logits_to_keep

    model = tiny_policy.model
    assert takes_logits_to_keep(model) and keep_logits(model, 2) == {"logits_to_keep": 2}
    assert keep_logits(model, 0) == {}  # every position
    ids = torch.tensor([[5, 9, 14, 3, 7]])
    last_two = model(input_ids=ids, **keep_logits(model, 2)).logits
    assert last_two.shape[1] == 2 and torch.allclose(last_two, model(input_ids=ids).logits[:, -2:], atol=1e-5)

    class Plain:  # a model without the argument gets nothing extra
        def forward(self, input_ids=None):  # type: ignore[no-untyped-def]
            return None

    assert not takes_logits_to_keep(Plain()) and keep_logits(Plain(), 1) == {}
