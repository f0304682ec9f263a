"""Handing a KV cache to a transformers model and reading it back, across releases.

transformers 5 renamed a causal LM's ``past_key_values`` argument and output to
``cache`` (the old name still works there, with a deprecation warning on every call);
earlier releases know only ``past_key_values``. Callers never spell either name:

    out = model(input_ids=ids, use_cache=True)
    out = model(input_ids=next_ids, use_cache=True, **with_cache(model, cache_of(out)))

Imports nothing heavy: this works on what the model and its outputs already are.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

__all__ = ["cache_kwarg", "cache_of", "with_cache"]

_NEW, _OLD = "cache", "past_key_values"


def cache_kwarg(model: Any) -> str:
    """The keyword ``model.forward`` takes a KV cache by (``cache`` or ``past_key_values``).

    A wrapper whose ``forward`` takes only ``**kwargs`` (peft's LoRA model) is asked
    about the model it wraps (``get_base_model()``); one that hands out the wrapped
    model's ``forward`` is asked about the model that method belongs to.
    """
    base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    forward = base.forward  # a delegating wrapper hands out the wrapped model's bound forward
    owner: Any = type(getattr(forward, "__self__", base))
    return _kwarg_of(owner)


@functools.lru_cache(maxsize=64)
def _kwarg_of(cls: Any) -> str:
    """One answer per model class (keyed by the class, so no model is kept alive)."""
    params = inspect.signature(cls.forward).parameters
    return _NEW if _NEW in params and _OLD not in params else _OLD


def with_cache(model: Any, cache: Any) -> dict[str, Any]:
    """``{name: cache}`` under the keyword ``model`` takes it by (empty for ``None``)."""
    return {} if cache is None else {cache_kwarg(model): cache}


def cache_of(out: Any) -> Any:
    """The KV cache a forward pass returned (``None`` without one)."""
    keys = out.keys() if callable(getattr(out, "keys", None)) else ()
    if _NEW in keys:
        return out[_NEW]
    if _OLD in keys:
        return out[_OLD]
    return None
