"""A rollout engine backed by an OpenAI-compatible completions server (vLLM, SGLang).

Token-in, token-out over HTTP: the prompt is sent as token ids (``/v1/completions``
accepts a list of ints), the sampled tokens come back as ids
(``return_tokens_as_token_ids``) with their log-probs and the top-k alternatives.
The chat template and the forced ids of tool results stay local: ``start`` and
``extend`` are the local policy's (the trainer's model and tokenizer), so the ids a
trainer reads are exactly the ids the server sampled.

Entropy: a server returns only the top-k log-probs, so each token's entropy is the
top-k approximation ``-sum_k p log p`` (a lower bound), recorded as
``entropy_kind="topk"`` with ``top_k``; ARPO's branching rule reads it like the exact one.

Weights: the server holds its own copy. ``sync_weights()`` (called by the trainer after
each optimiser step) hands the trainer's model to a
:class:`~reasonloop.training.weight_sync.WeightSync` (``none``, ``lora_reload``,
``checkpoint_reload``). ``stats`` reports how many optimiser steps the weights that
sampled a step's turns were behind the trainer's (``engine_weight_lag``), so a run
whose server keeps its weights says that it sampled off-policy.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reasonloop.errors import PolicyError
from reasonloop.policy.base import Completion, Context, SamplingParams, ToolFormat, ToolSpec
from reasonloop.policy.parsing import parse_tool_calls, tool_stop_strings
from reasonloop.training.engine import EngineStats
from reasonloop.training.weight_sync import ServerLink, WeightSync, build_weight_sync
from reasonloop.trajectory.schema import Usage

__all__ = ["LocalTokenizing", "ServerEngine", "SyncStats", "parse_token_id", "topk_entropy", "turn_completion", "turn_end_ids"]

_PREFIX = "token_id:"
_log = logging.getLogger(__name__)


def parse_token_id(token: str) -> int:
    """The id in a ``token_id:123`` token string (what ``return_tokens_as_token_ids`` returns)."""
    if not token.startswith(_PREFIX):
        raise PolicyError(f"server returned token {token[:40]!r}, not 'token_id:N' (return_tokens_as_token_ids unsupported?)")
    return int(token[len(_PREFIX):])


def topk_entropy(logprobs: Sequence[float]) -> float:
    """``-sum p log p`` over the given top-k log-probs (a lower bound of the full entropy)."""
    return float(-sum(math.exp(lp) * lp for lp in logprobs if math.isfinite(lp)))


def turn_end_ids(local: Any) -> frozenset[int]:
    """The ids that end a turn for a tokenising policy (empty when it has none)."""
    return frozenset(getattr(local, "_stop_ids", frozenset()))


def turn_completion(local: Any, *, prompt_len: int, tools: Sequence[ToolSpec], ids: Sequence[int],
                    logprobs: Sequence[float], entropies: Sequence[float], finish_reason: str, top_k: int,
                    model: str) -> Completion:
    """A sampled turn as a :class:`Completion`: the text decoded by ``local`` (a trailing
    turn-end id is kept in the ids, left out of the text), tool calls parsed in its format.

    Raises:
        PolicyError: No ids, or ids, log-probs and entropies of different lengths.
    """
    if not ids or len(logprobs) != len(ids) or len(entropies) != len(ids):
        raise PolicyError("the sampler returned no or misaligned token ids / log-probs")
    content = list(ids[:-1]) if ids[-1] in turn_end_ids(local) else list(ids)
    text = str(local.tokenizer.decode(content, skip_special_tokens=False, clean_up_tokenization_spaces=False))
    calls, errors = parse_tool_calls(text, tools, local.tool_format)
    return Completion(
        text=text, tool_calls=calls, parse_errors=errors, finish_reason=finish_reason, token_ids=list(ids),
        logprobs=list(logprobs), entropies=list(entropies), entropy_kind="topk", top_k=top_k,
        usage=Usage(prompt_tokens=prompt_len, completion_tokens=len(ids)), model=model,
        assistant_message={"role": "assistant", "content": text},
    )


@dataclass(kw_only=True)
class SyncStats(EngineStats):
    """:class:`EngineStats` of an engine that samples from its own copy of the weights."""

    weight_lag: int = 0
    """Most optimiser steps the sampling weights were behind, over the turns since :meth:`reset`."""
    stale_calls: int = 0
    """Turns sampled with weights behind the trainer's."""
    syncs: int = 0
    """Weight pushes since :meth:`reset`."""
    sync_s: float = 0.0
    """Seconds spent pushing weights since :meth:`reset`."""

    def reset(self) -> None:
        super().reset()
        self.weight_lag = self.stale_calls = self.syncs = 0
        self.sync_s = 0.0

    def record_turn(self, prompt_tokens: int, sampled_tokens: int, lag: int, cached_tokens: int = 0) -> None:
        """Count one sampled turn."""
        self.calls += 1
        self.prompt_tokens += prompt_tokens
        self.reused_tokens += cached_tokens
        self.computed_tokens += prompt_tokens - cached_tokens + sampled_tokens
        self.weight_lag = max(self.weight_lag, lag)
        self.stale_calls += lag > 0

    def as_dict(self) -> dict[str, float]:
        return {**super().as_dict(), "engine_weight_lag": float(self.weight_lag),
                "engine_off_policy": float(self.stale_calls > 0), "engine_stale_calls": float(self.stale_calls),
                "engine_syncs": float(self.syncs), "engine_sync_s": self.sync_s}


class LocalTokenizing:
    """For engines that sample elsewhere (a server, vLLM) but keep the chat template, the
    forced ids and the tool format local: ``self.local`` is a tokenising policy over the
    trainer's model (an :class:`~reasonloop.policy.hf.HFPolicy`)."""

    local: Any

    @property
    def tool_format(self) -> ToolFormat:
        return self.local.tool_format  # type: ignore[no-any-return]

    @property
    def tokenizer(self) -> Any:
        return self.local.tokenizer

    @property
    def template(self) -> Any:
        return self.local.template

    @property
    def module(self) -> Any:
        """The trainer's model (what :meth:`sync_weights` pushes)."""
        module = getattr(self.local, "module", None)
        return self.local.model if module is None else module

    def start(self, messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]) -> list[int] | None:
        return self.local.start(messages, tools)  # type: ignore[no-any-return]

    def extend(self, context: Context, new_messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]) -> list[int] | None:
        return self.local.extend(context, new_messages, tools)  # type: ignore[no-any-return]


class ServerEngine(LocalTokenizing):
    """A :class:`~reasonloop.policy.base.Policy` whose turns are sampled by a completions server."""

    def __init__(self, local: Any, base_url: str, served_model: str, *, top_logprobs: int = 5, timeout_s: float = 120.0,
                 api_key: str | None = None, client: Any = None, weight_sync: WeightSync | None = None,
                 sync_timeout_s: float = 300.0) -> None:
        """Args:
        local: A tokenising policy of the same model (an :class:`HFPolicy` over the
            trainer's model): its ``start``/``extend``, tokenizer, tool format and
            turn-end ids are used, and its model is what :meth:`sync_weights` pushes.
        base_url: Server root, e.g. ``http://localhost:8000/v1``.
        served_model: The model name the server serves (the base model's).
        top_logprobs: Alternatives per token requested (for the top-k entropy).
        timeout_s: Per-request timeout of completions.
        api_key: Bearer token, if the server wants one.
        client: An ``httpx.AsyncClient`` to use (one is created per call otherwise).
        weight_sync: How :meth:`sync_weights` updates the server (default: ``none``).
        sync_timeout_s: Per-request timeout of the weight sync's control calls
            (loading weights takes a while on big models).
        """
        if top_logprobs < 1:
            raise PolicyError("top_logprobs must be >= 1")
        self.local = local
        self.base_url = base_url.rstrip("/")
        self.base_model = self.served_model = served_model
        self.top_logprobs = top_logprobs
        self.timeout_s = timeout_s
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = client
        self.sync_timeout_s = sync_timeout_s
        self.weight_sync = weight_sync or build_weight_sync()
        self.stats = SyncStats()
        self._trainer_version = self._served_version = 0

    @property
    def name(self) -> str:
        return f"server:{self.base_model}"

    @property
    def weight_lag(self) -> int:
        """Optimiser steps the served weights are behind the trainer's."""
        return self._trainer_version - self._served_version

    def sync_weights(self, model: Any = None) -> None:
        """The trainer's weights changed: push them with the configured weight sync.

        Args:
            model: The model to push (default: :attr:`module`).

        Raises:
            PolicyError: The push failed (the served weights are then unknown).
        """
        started = time.perf_counter()
        self._trainer_version += 1
        name = self.weight_sync.push(self.module if model is None else model, self.link(), self._trainer_version)
        if self.weight_sync.updates_server:
            self._served_version = self._trainer_version
        elif self._trainer_version == 1:
            _log.warning("weight sync %r: the server keeps its weights, so rollouts are off-policy from now on "
                         "(engine_weight_lag counts the steps)", self.weight_sync.kind)
        if name is not None:
            self.served_model = name
        self.stats.syncs += 1
        self.stats.sync_s += time.perf_counter() - started

    def link(self) -> ServerLink:
        """Where the weight sync's control calls go."""
        return ServerLink(base_url=self.base_url, headers=dict(self._headers), timeout_s=self.sync_timeout_s)

    def request_body(self, prompt: Sequence[int], tools: Sequence[ToolSpec], sampling: SamplingParams) -> dict[str, Any]:
        """The ``/completions`` request for one turn."""
        body: dict[str, Any] = {
            "model": self.served_model, "prompt": list(prompt), "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature, "top_p": sampling.top_p, "logprobs": self.top_logprobs,
            "return_tokens_as_token_ids": True, "skip_special_tokens": False, "include_stop_str_in_output": True,
            "stop": list(dict.fromkeys([*sampling.stop, *tool_stop_strings(tools, self.tool_format)])),
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        return body

    async def generate(self, context: Context, tools: Sequence[ToolSpec], sampling: SamplingParams) -> Completion:
        import httpx

        prompt = context.token_ids if context.token_ids is not None else self.start(context.messages, tools)
        if not prompt:
            raise PolicyError("ServerEngine.generate needs a non-empty context")
        body = self.request_body(prompt, tools, sampling)
        lag = self.weight_lag
        try:
            if self._client is not None:
                reply = await self._client.post(f"{self.base_url}/completions", json=body, headers=self._headers,
                                                timeout=self.timeout_s)
            else:
                async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                    reply = await client.post(f"{self.base_url}/completions", json=body, headers=self._headers)
        except httpx.HTTPError as exc:  # the agent records a failed turn and may retry
            return Completion(text=f"completions server unreachable: {type(exc).__name__}", finish_reason="error",
                              model=self.name)
        if reply.status_code != 200:
            return Completion(text=f"completions server answered {reply.status_code}: {reply.text[:300]}",
                              finish_reason="error", model=self.name)
        payload = reply.json()
        done = self._completion(prompt, tools, payload)
        details = (payload.get("usage") or {}).get("prompt_tokens_details") or {}  # vLLM: --enable-prompt-tokens-details
        self.stats.record_turn(len(prompt), len(done.token_ids), lag, int(details.get("cached_tokens") or 0))
        return done

    def _completion(self, prompt: Sequence[int], tools: Sequence[ToolSpec], payload: dict[str, Any]) -> Completion:
        choice = payload["choices"][0]
        lp = choice.get("logprobs") or {}
        ids = [parse_token_id(t) for t in lp.get("tokens", [])]
        logprobs = [float(v) for v in lp.get("token_logprobs", [])]
        tops = lp.get("top_logprobs") or [{} for _ in ids]
        entropies = [topk_entropy(list(t.values())) for t in tops]
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        return turn_completion(self.local, prompt_len=len(prompt), tools=tools, ids=ids, logprobs=logprobs,
                               entropies=entropies, finish_reason=finish, top_k=self.top_logprobs, model=self.name)
