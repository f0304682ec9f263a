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

Weights: the server holds its own copy; after an optimiser step the trainer must push
the new weights to it (vLLM's weight-update endpoints, or a reload from a saved
checkpoint) before the next rollout. This engine only samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from reasonloop.errors import PolicyError
from reasonloop.policy.base import Completion, Context, SamplingParams, ToolFormat, ToolSpec
from reasonloop.policy.parsing import parse_tool_calls, tool_stop_strings
from reasonloop.trajectory.schema import Usage

__all__ = ["ServerEngine", "parse_token_id", "topk_entropy"]

_PREFIX = "token_id:"


def parse_token_id(token: str) -> int:
    """The id in a ``token_id:123`` token string (what ``return_tokens_as_token_ids`` returns)."""
    if not token.startswith(_PREFIX):
        raise PolicyError(f"server returned token {token[:40]!r}, not 'token_id:N' (return_tokens_as_token_ids unsupported?)")
    return int(token[len(_PREFIX):])


def topk_entropy(logprobs: Sequence[float]) -> float:
    """``-sum p log p`` over the given top-k log-probs (a lower bound of the full entropy)."""
    return float(-sum(math.exp(lp) * lp for lp in logprobs if math.isfinite(lp)))


class ServerEngine:
    """A :class:`~reasonloop.policy.base.Policy` whose turns are sampled by a completions server."""

    def __init__(self, local: Any, base_url: str, served_model: str, *, top_logprobs: int = 5, timeout_s: float = 120.0,
                 api_key: str | None = None, client: Any = None) -> None:
        """Args:
        local: A tokenising policy of the same model (an :class:`HFPolicy`): its
            ``start``/``extend``, tokenizer, tool format and turn-end ids are used.
        base_url: Server root, e.g. ``http://localhost:8000/v1``.
        served_model: The model name the server serves.
        top_logprobs: Alternatives per token requested (for the top-k entropy).
        timeout_s: Per-request timeout.
        api_key: Bearer token, if the server wants one.
        client: An ``httpx.AsyncClient`` to use (one is created per call otherwise).
        """
        if top_logprobs < 1:
            raise PolicyError("top_logprobs must be >= 1")
        self.local = local
        self.base_url = base_url.rstrip("/")
        self.served_model = served_model
        self.top_logprobs = top_logprobs
        self.timeout_s = timeout_s
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = client

    @property
    def name(self) -> str:
        return f"server:{self.served_model}"

    @property
    def tool_format(self) -> ToolFormat:
        return self.local.tool_format  # type: ignore[no-any-return]

    def start(self, messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]) -> list[int] | None:
        return self.local.start(messages, tools)  # type: ignore[no-any-return]

    def extend(self, context: Context, new_messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]) -> list[int] | None:
        return self.local.extend(context, new_messages, tools)  # type: ignore[no-any-return]

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
        return self._completion(prompt, tools, reply.json())

    def _completion(self, prompt: Sequence[int], tools: Sequence[ToolSpec], payload: dict[str, Any]) -> Completion:
        choice = payload["choices"][0]
        lp = choice.get("logprobs") or {}
        ids = [parse_token_id(t) for t in lp.get("tokens", [])]
        logprobs = [float(v) for v in lp.get("token_logprobs", [])]
        tops = lp.get("top_logprobs") or [{} for _ in ids]
        entropies = [topk_entropy(list(t.values())) for t in tops]
        if not ids or len(logprobs) != len(ids) or len(entropies) != len(ids):
            raise PolicyError("completions server returned no or misaligned token ids / log-probs")
        stop_ids: frozenset[int] = getattr(self.local, "_stop_ids", frozenset())
        content = ids[:-1] if ids[-1] in stop_ids else ids
        text = str(self.local.tokenizer.decode(content, skip_special_tokens=False, clean_up_tokenization_spaces=False))
        calls, errors = parse_tool_calls(text, tools, self.tool_format)
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        return Completion(
            text=text, tool_calls=calls, parse_errors=errors, finish_reason=finish, token_ids=ids, logprobs=logprobs,
            entropies=entropies, entropy_kind="topk", top_k=self.top_logprobs,
            usage=Usage(prompt_tokens=len(prompt), completion_tokens=len(ids)), model=self.name,
            assistant_message={"role": "assistant", "content": text},
        )
