"""Rollout engines: the trainable local model as a policy that reuses shared prefixes.

An ARPO group is a tree: N global samples share the prompt, and every branch shares
its parent's context up to the tool result it forked after. :class:`HFEngine` is an
:class:`~reasonloop.policy.hf.HFPolicy` whose model keeps the KV cache of each
finished generation, keyed by the exact token ids it encoded; a later call whose
prompt starts with a cached key encodes only the remaining tokens (the cache is
copied and cropped to the shared length, so siblings never see each other's
tokens). The sampling loop itself is HFPolicy's, unchanged: only the prefill call is
served partly from the cache.

The engine's model is the trainer's model object; after an optimiser step the cached
keys and values are stale, so :meth:`HFEngine.sync_weights` drops them.
"""

from __future__ import annotations

import copy
import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from reasonloop.errors import ConfigError
from reasonloop.policy.base import ToolSpec
from reasonloop.policy.hf import HFPolicy, HFPolicyConfig
from reasonloop.policy.hf_forward import cache_kwarg, cache_of, with_cache

__all__ = ["EngineStats", "HFEngine", "PrefixCache", "PrefixReuseModel", "PromptMemo"]


@dataclass(kw_only=True)
class EngineStats:
    """Token accounting of an engine since its last :meth:`reset`."""

    calls: int = 0
    """Generations (prefill calls)."""
    prompt_tokens: int = 0
    """Prompt tokens the generations were asked to continue."""
    reused_tokens: int = 0
    """Prompt tokens served from the prefix cache instead of being encoded."""
    computed_tokens: int = 0
    """Tokens actually run through the model (encoded prompt suffixes + decode steps)."""

    def reset(self) -> None:
        self.calls = self.prompt_tokens = self.reused_tokens = self.computed_tokens = 0

    def as_dict(self) -> dict[str, float]:
        return {"engine_calls": float(self.calls), "engine_prompt_tokens": float(self.prompt_tokens),
                "engine_reused_tokens": float(self.reused_tokens),
                "engine_computed_tokens": float(self.computed_tokens)}


class PromptMemo:
    """Prompt ids of ``start(messages, tools)``, computed once per distinct prompt (LRU).

    Every sample of a group starts from the same messages; rendering the chat template
    and tokenising it again for each gives the same ids. The ids depend on the
    messages, the tools' schemas and the (fixed) template and tokenizer only, never
    on the weights. Messages that are not plain JSON data are not memoised.
    """

    def __init__(self, start: Callable[[Sequence[dict[str, Any]], Sequence[ToolSpec]], list[int]], *,
                 max_entries: int = 256) -> None:
        if max_entries < 1:
            raise ConfigError("max_entries must be >= 1")
        self._start = start
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[int, ...]] = OrderedDict()

    def __call__(self, messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]) -> list[int]:
        try:
            key = json.dumps([list(messages), [t.openai_schema() for t in tools]], sort_keys=True)
        except (TypeError, ValueError):  # not plain data: no key to trust
            return self._start(messages, tools)
        ids = self._entries.get(key)
        if ids is None:
            ids = tuple(self._start(messages, tools))
            self._entries[key] = ids
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        self._entries.move_to_end(key)
        return list(ids)


class PrefixCache:
    """KV caches of finished generations, keyed by the token ids they encode (LRU)."""

    def __init__(self, max_entries: int = 64) -> None:
        if max_entries < 1:
            raise ConfigError("max_entries must be >= 1")
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[int, ...], Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, ids: Sequence[int], cache: Any) -> None:
        key = tuple(ids)
        self._entries[key] = cache
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def longest_prefix(self, ids: Sequence[int]) -> tuple[int, Any]:
        """``(n, cache)``: a private copy of the cache sharing the longest prefix with
        ``ids``, cropped to ``n`` tokens, ``n < len(ids)`` (``(0, None)`` when none)."""
        best_key: tuple[int, ...] | None = None
        best = 0
        limit = len(ids) - 1  # at least one token must be fed to get next-token logits
        for key in self._entries:
            n = _common_prefix(key, ids, limit)
            if n > best:
                best, best_key = n, key
        if best_key is None:
            return 0, None
        self._entries.move_to_end(best_key)
        cache = copy.deepcopy(self._entries[best_key])
        extra = len(best_key) - best
        if extra:
            cache.crop(-extra)
        return best, cache

    def clear(self) -> None:
        self._entries.clear()


def _common_prefix(a: Sequence[int], b: Sequence[int], limit: int) -> int:
    n = min(len(a), len(b), limit)
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class PrefixReuseModel:
    """Wraps a causal LM so that a prefill call reuses the longest cached prefix.

    Calls without a KV cache are prefills: the wrapper looks the prompt up,
    runs only the uncached suffix, and from then on records the ids fed (prompt and
    decode steps). When the next prefill starts, the finished generation's cache is
    stored under the ids it encodes. Every other attribute is the model's.
    """

    def __init__(self, model: Any, *, reuse: bool = True, max_entries: int = 64) -> None:
        self.module = model
        self.reuse = reuse
        self.cache = PrefixCache(max_entries)
        self.stats = EngineStats()
        self._fed: list[int] = []
        self._live: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "module":
            raise AttributeError(name)
        return getattr(self.module, name)

    def _commit(self) -> None:
        if self.reuse and self._live is not None and self._fed:
            self.cache.put(self._fed, self._live)
        self._fed, self._live = [], None

    def __call__(self, *, input_ids: Any, **kwargs: Any) -> Any:
        ids = [int(i) for i in input_ids[0].tolist()]
        past = kwargs.pop(cache_kwarg(self.module), None)
        if past is None:  # a prefill: a new generation starts
            self._commit()
            self.stats.calls += 1
            self.stats.prompt_tokens += len(ids)
            n, past = self.cache.longest_prefix(ids) if self.reuse else (0, None)
            self.stats.reused_tokens += n
            self._fed = ids[:n]
            input_ids, ids = input_ids[:, n:], ids[n:]
        out = self.module(input_ids=input_ids, **with_cache(self.module, past), **kwargs)
        self.stats.computed_tokens += len(ids)
        self._fed.extend(ids)
        self._live = cache_of(out)
        return out

    def clear(self) -> None:
        """Forget every cached prefix (the weights changed)."""
        self._fed, self._live = [], None
        self.cache.clear()


class HFEngine(HFPolicy):
    """:class:`HFPolicy` over a :class:`PrefixReuseModel`: same sampling, shared prefixes encoded once.

    ``engine.module`` is the underlying model (the trainer's); ``engine.stats`` counts
    the tokens actually computed.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        config: HFPolicyConfig | None = None,
        *,
        prefix_reuse: bool = True,
        max_entries: int = 64,
    ) -> None:
        """Args:
        model: A transformers causal LM (shared with the trainer).
        tokenizer: Its tokenizer.
        config: Device, dtype, template, tool format (as for :class:`HFPolicy`).
        prefix_reuse: Reuse cached prefixes (``False`` re-encodes every prompt; kept
            for measurements).
        max_entries: Most generations whose caches are kept (least recently used go).
        """
        super().__init__(model, tokenizer, config)
        self._wrapper = PrefixReuseModel(self.model, reuse=prefix_reuse, max_entries=max_entries)
        self.model = self._wrapper
        self._prompts = PromptMemo(super().start)

    @property
    def module(self) -> Any:
        """The underlying transformers model."""
        return self._wrapper.module

    @property
    def stats(self) -> EngineStats:
        return self._wrapper.stats

    def start(self, messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]) -> list[int]:
        """:meth:`HFPolicy.start`, rendered and tokenised once per distinct prompt."""
        return self._prompts(messages, tools)

    def sync_weights(self) -> None:
        """The model's weights changed (same object): drop the stale prefix caches."""
        with self._lock:
            self._wrapper.clear()
