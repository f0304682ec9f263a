"""Keyword arguments of a transformers causal LM's forward pass that differ across
releases and models: the KV cache's name, and ``logits_to_keep``.

transformers 5 renamed a causal LM's ``past_key_values`` argument and output to
``cache`` (the old name still works there, with a deprecation warning on every call);
earlier releases know only ``past_key_values``. Callers never spell either name:

    out = model(input_ids=ids, use_cache=True)
    out = model(input_ids=next_ids, use_cache=True, **with_cache(model, cache_of(out)))

``logits_to_keep=n`` (transformers >= 4.45) projects only the last ``n`` positions
onto the vocabulary; :func:`keep_logits` passes it where the model takes it (a model
that does not returns every position's logits, and callers slice the last ``n``).

Imports nothing heavy: this works on what the model and its outputs already are.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

__all__ = ["cache_kwarg", "cache_of", "keep_logits", "takes_logits_to_keep", "with_cache"]

_NEW, _OLD = "cache", "past_key_values"


def _forward_owner(model: Any) -> Any:
    """The class whose ``forward`` signature tells what ``model`` takes.

    A wrapper whose ``forward`` takes only ``**kwargs`` (peft's LoRA model) stands for
    the model it wraps (``get_base_model()``); one that hands out the wrapped model's
    bound ``forward`` (a delegating wrapper) for the model that method belongs to.
    """
    base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    return type(getattr(base.forward, "__self__", base))


@functools.lru_cache(maxsize=64)
def _params(cls: Any) -> frozenset[str]:
    """Parameter names of ``cls.forward``, once per class (keyed by the class: no model is kept alive)."""
    return frozenset(inspect.signature(cls.forward).parameters)


def cache_kwarg(model: Any) -> str:
    """The keyword ``model.forward`` takes a KV cache by (``cache`` or ``past_key_values``)."""
    params = _params(_forward_owner(model))
    return _NEW if _NEW in params and _OLD not in params else _OLD


def takes_logits_to_keep(model: Any) -> bool:
    """Whether ``model.forward`` takes ``logits_to_keep``."""
    return "logits_to_keep" in _params(_forward_owner(model))


def keep_logits(model: Any, n: int) -> dict[str, Any]:
    """``{"logits_to_keep": n}`` where ``model`` takes it, else ``{}`` (``n <= 0``: every position)."""
    return {"logits_to_keep": n} if n > 0 and takes_logits_to_keep(model) else {}


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
