"""Any API model through LiteLLM: OpenAI, Anthropic, vLLM/SGLang servers, Ollama...

``LiteLLMPolicy("openai/gpt-4o-mini")`` or ``LiteLLMPolicy("hosted_vllm/Qwen/Qwen3-4B",
api_base="http://localhost:8000/v1")``. Each ``generate`` is one chat completion:

* retries are ours (:mod:`reasonloop.policy.retry`): LiteLLM's and the SDK's are
  switched off (``num_retries=0, max_retries=0``) so attempts never multiply;
  failures that retrying cannot fix raise :class:`~reasonloop.errors.PolicyError`
  with a scrubbed message;
* malformed output is a value, not an exception: undecodable tool calls go to
  ``parse_errors``, ``finish_reason="length"`` is kept for the agent to report,
  and an answer with no choices comes back with ``finish_reason="error"`` and an
  explanation in ``parse_errors``;
* per-token log-probs are recorded when the provider returns them; with
  ``top_logprobs=k`` the entropy of each position is approximated from the k
  returned alternatives (``entropy_kind="topk"``, see :func:`topk_entropy`);
* answers can be served from a :class:`~reasonloop.policy.cache.ResponseCache`.

API policies do not tokenise: ``start``/``extend`` return ``None`` and token ids stay empty.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reasonloop.errors import ConfigError, PolicyError
from reasonloop.policy.base import Completion, Context, SamplingParams, ToolFormat, ToolSpec
from reasonloop.policy.cache import ResponseCache, request_key
from reasonloop.policy.parsing import parse_openai_tool_calls, parse_tool_calls, tool_stop_strings
from reasonloop.policy.retry import RetryConfig, RetryDecision, call_with_retries, classify
from reasonloop.policy.secrets import Secret, install_log_filter, scrub
from reasonloop.trajectory.schema import Usage

__all__ = [
    "LiteLLMConfig",
    "LiteLLMPolicy",
    "from_model_string",
    "restore_tool_stop",
    "tool_system_prompt",
    "topk_entropy",
]

_log = logging.getLogger(__name__)
_GUARDED_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "openai", "httpx", "httpcore", "reasonloop")
_TOOL_FORMATS = ("openai", "tags", "json")
_SECRET_EXTRA = ("key", "secret", "token", "password", "headers")


@dataclass(frozen=True, kw_only=True)
class LiteLLMConfig:
    """Settings of one API model."""

    model: str
    """LiteLLM model string, provider first: ``openai/gpt-4o-mini``, ``anthropic/claude-...``,
    ``hosted_vllm/<name>``, ``ollama/<name>``."""
    api_base: str | None = None
    """Server URL for self-hosted back ends (``http://host:8000/v1``); ``None`` uses the provider's."""
    api_key: Secret | str | None = field(default=None, repr=False)
    """Key for the provider; ``None`` lets LiteLLM read the provider's variable
    (``OPENAI_API_KEY``...). Stored as a :class:`Secret`, never printed."""
    tool_format: ToolFormat = "openai"
    """``openai``: native function calling. ``tags``/``json``: the tool list goes into the
    system prompt and calls are parsed from the text (for models without tool APIs)."""
    timeout_s: float = 120.0
    """Per-attempt HTTP timeout."""
    max_retries: int = 3
    """Retries after the first attempt, for 429/5xx/timeouts/connection errors only."""
    backoff: RetryConfig | None = None
    """Backoff details (its ``max_retries`` is replaced by the field above)."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for ``litellm.acompletion`` (``reasoning_effort``, ``extra_body``...)."""
    cache_sampled: bool = False
    """Also cache calls with temperature > 0 and no seed. Off by default: such calls
    are meant to differ (several samples of one prompt), and a cache would make them equal."""
    jitter_seed: int | None = None
    """Seed of the retry jitter, for reproducible waits; ``None`` draws one."""

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError("model must be a non-empty LiteLLM model string such as 'openai/gpt-4o-mini'")
        if self.tool_format not in _TOOL_FORMATS:
            raise ConfigError(f"tool_format must be one of {', '.join(_TOOL_FORMATS)}, got {self.tool_format!r}")
        if not self.timeout_s > 0:
            raise ConfigError("timeout_s must be > 0")
        if self.max_retries < 0:
            raise ConfigError("max_retries must be >= 0")
        reserved = {"model", "messages", "api_key", "api_base", "num_retries", "max_retries", "timeout"} & set(self.extra)
        if reserved:
            raise ConfigError(f"extra may not set {', '.join(sorted(reserved))}: use the config fields")
        if isinstance(self.api_key, str):
            object.__setattr__(self, "api_key", Secret(self.api_key))

    @property
    def retry(self) -> RetryConfig:
        """The effective retry policy."""
        return dataclasses.replace(self.backoff or RetryConfig(), max_retries=self.max_retries)

    def key_value(self) -> str | None:
        """The API key itself (``None`` when LiteLLM should find it)."""
        return self.api_key.get() if isinstance(self.api_key, Secret) else None


def topk_entropy(logprobs: Sequence[float]) -> float:
    """Entropy (nats) of the distribution renormalised over the top-k alternatives of one position.

    An approximation of the full-vocabulary entropy: the mass outside the top k is
    ignored, so it is exact only when the top k hold (almost) all of it, and it is
    at most ``log k``.

    Args:
        logprobs: Log-probabilities of the k alternatives an API returned.

    Returns:
        ``H = -sum q_i log q_i`` with ``q_i = p_i / sum_j p_j``; 0.0 for fewer than two finite values.
    """
    finite = [v for v in logprobs if math.isfinite(v)]
    if len(finite) < 2:
        return 0.0
    top = max(finite)
    weights = [math.exp(v - top) for v in finite]
    total = sum(weights)
    # H = log Z - sum q_i (l_i - max), computed from shifted values for stability.
    return max(0.0, math.log(total) - sum(w / total * (v - top) for w, v in zip(weights, finite, strict=True)))


def tool_system_prompt(tools: Sequence[ToolSpec], fmt: ToolFormat) -> str:
    """Text that tells a model without a tool API which tools exist and how to call them."""
    if fmt == "openai" or not tools:
        return ""
    if fmt == "tags":
        how = (
            "To call a tool, write <NAME>...</NAME> with the tool's name as the tag. If the tool has one "
            "string parameter, the body is that string (e.g. <python>print(1)</python>); otherwise the body "
            "is a JSON object of arguments."
        )
    else:
        how = 'To call a tool, write <tool_call>{"name": "NAME", "arguments": {...}}</tool_call>.'
    lines = ["# Tools", how, "Stop after a call: its result comes back in the next message.", ""]
    for spec in tools:
        lines.append(f"## {spec.name}")
        if spec.description:
            lines.append(spec.description)
        lines.append("Parameters (JSON schema): " + json.dumps(spec.parameters, ensure_ascii=False))
    return "\n".join(lines)


def restore_tool_stop(text: str, stop: Sequence[str]) -> str:
    """Put back the closing tag an API removed when it stopped on it.

    OpenAI-style APIs drop the matched stop string from the text, so ``<python>x``
    arrives without ``</python>``. When the last tag a stop string closes is open,
    append the stop string; otherwise return ``text`` unchanged.
    """
    for closing in stop:
        if not (closing.startswith("</") and closing.endswith(">")):
            continue
        opening = "<" + closing[2:]
        if text.rfind(opening) > text.rfind(closing):
            return text + closing
    return text


def _with_tool_prompt(messages: list[dict[str, Any]], prompt: str) -> list[dict[str, Any]]:
    if not prompt:
        return messages
    if messages and messages[0].get("role") == "system" and isinstance(messages[0].get("content"), str):
        first = dict(messages[0], content=messages[0]["content"].rstrip() + "\n\n" + prompt)
        return [first, *messages[1:]]
    return [{"role": "system", "content": prompt}, *messages]


def _import_litellm() -> Any:
    # The cost map would otherwise be fetched from GitHub at import time.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True  # no "Give Feedback" banners on stdout
    return litellm


class LiteLLMPolicy:
    """A :class:`~reasonloop.policy.base.Policy` served by an API through LiteLLM.

    Args:
        model: A LiteLLM model string, or a full :class:`LiteLLMConfig`.
        cache: Optional response cache shared with other policies or runs.
        **kwargs: :class:`LiteLLMConfig` fields when ``model`` is a string.
    """

    def __init__(self, model: str | LiteLLMConfig, *, cache: ResponseCache | None = None, **kwargs: Any) -> None:
        if isinstance(model, LiteLLMConfig):
            if kwargs:
                raise ConfigError("pass either a LiteLLMConfig or keyword fields, not both")
            self.config = model
        else:
            self.config = LiteLLMConfig(model=model, **kwargs)
        self.cache = cache
        self._rng = random.Random(self.config.jitter_seed)
        self._litellm: Any = None
        self._no_logprobs = False

    def __repr__(self) -> str:
        return f"LiteLLMPolicy(model={self.config.model!r}, tool_format={self.config.tool_format!r})"

    @property
    def name(self) -> str:
        return self.config.model

    @property
    def tool_format(self) -> ToolFormat:
        return self.config.tool_format

    def start(self, messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]) -> list[int] | None:
        return None

    def extend(
        self, context: Context, new_messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]
    ) -> list[int] | None:
        return None

    # -- public entry point ------------------------------------------------------------

    async def generate(self, context: Context, tools: Sequence[ToolSpec], sampling: SamplingParams) -> Completion:
        """One assistant turn for ``context``.

        Raises:
            PolicyError: Non-retryable API errors (400, 401, 403, 404, context length),
                or retryable ones after ``1 + max_retries`` attempts. The message is scrubbed.
        """
        request = self._request(context, tools, sampling)
        key = self._cache_key(request, tools, sampling)
        if key is not None and self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        response = await self._complete(request)
        completion = self._completion(response, tools)
        if key is not None and self.cache is not None and completion.finish_reason != "error":
            self.cache.put(key, completion)
        return completion

    # -- request -----------------------------------------------------------------------

    def _request(self, context: Context, tools: Sequence[ToolSpec], sampling: SamplingParams) -> dict[str, Any]:
        fmt = self.config.tool_format
        messages = _with_tool_prompt([dict(m) for m in context.messages], tool_system_prompt(tools, fmt))
        request: dict[str, Any] = {
            "messages": messages,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
        }
        stop = list(sampling.stop) + [s for s in tool_stop_strings(tools, fmt) if s not in sampling.stop]
        if stop:
            request["stop"] = stop
        if sampling.seed is not None:
            request["seed"] = sampling.seed
        if sampling.logprobs and not self._no_logprobs:
            request["logprobs"] = True
            if sampling.top_logprobs:
                request["top_logprobs"] = sampling.top_logprobs
        if fmt == "openai" and tools:
            request["tools"] = [t.openai_schema() for t in tools]
        return request

    def _cache_key(self, request: Mapping[str, Any], tools: Sequence[ToolSpec], sampling: SamplingParams) -> str | None:
        if self.cache is None:
            return None
        if sampling.temperature > 0 and sampling.seed is None and not self.config.cache_sampled:
            return None
        extra = {k: v for k, v in self.config.extra.items() if not any(s in k.lower() for s in _SECRET_EXTRA)}
        return request_key(
            model=self.config.model,
            sampling=sampling.as_dict(),
            messages=request["messages"],
            tools=[t.openai_schema() for t in tools],
            tool_format=self.config.tool_format,
            extra=extra,
        )

    # -- the call ----------------------------------------------------------------------

    async def _complete(self, request: dict[str, Any]) -> Any:
        litellm = self._ensure_litellm()
        kwargs: dict[str, Any] = {
            "drop_params": True,  # a provider without logprobs/seed ignores them instead of failing
            **self.config.extra,
            **request,
            "model": self.config.model,
            "timeout": self.config.timeout_s,
            # Ours is the only retry loop: LiteLLM's wrapper (num_retries) and the
            # OpenAI SDK (max_retries) would each multiply the attempts.
            "num_retries": 0,
            "max_retries": 0,
        }
        if self.config.api_base:
            kwargs["api_base"] = self.config.api_base
        secret = self.config.key_value()
        if secret is not None:
            kwargs["api_key"] = secret
        failure: PolicyError
        try:
            return await call_with_retries(
                lambda: litellm.acompletion(**kwargs), config=self.config.retry, rng=self._rng, on_retry=self._log_retry
            )
        except Exception as exc:
            failure = self._policy_error(exc)
        # Raised outside the handler so the unscrubbed original is not chained as __context__.
        if failure.status_code == 400 and "logprob" in str(failure).lower() and "logprobs" in request:
            self._no_logprobs = True
            _log.info("%s: the provider refused logprobs; asking without them from now on", self.config.model)
            return await self._complete({k: v for k, v in request.items() if k not in ("logprobs", "top_logprobs")})
        raise failure

    def _ensure_litellm(self) -> Any:
        if self._litellm is None:
            self._litellm = _import_litellm()
            install_log_filter(_GUARDED_LOGGERS, [self.config.key_value()])
        return self._litellm

    def _scrub(self, text: str) -> str:
        return scrub(text, [self.config.key_value()])

    def _log_retry(self, attempt: int, decision: RetryDecision, wait_s: float) -> None:
        _log.info(
            "%s: attempt %d failed (%s); retrying in %.2fs", self.config.model, attempt, decision.reason, wait_s
        )

    def _policy_error(self, exc: BaseException) -> PolicyError:
        decision = classify(exc)
        detail = self._scrub(f"{type(exc).__name__}: {exc}")[:2000]
        if decision.retry:
            attempts = 1 + self.config.max_retries
            message = f"{self.config.model}: gave up after {attempts} attempts ({decision.reason}): {detail}"
        else:
            message = f"{self.config.model}: {decision.reason}, not retried: {detail}"
        return PolicyError(message, status_code=decision.status_code, retryable=decision.retry)

    # -- response ----------------------------------------------------------------------

    def _completion(self, response: Any, tools: Sequence[ToolSpec]) -> Completion:
        data: dict[str, Any] = response.model_dump() if hasattr(response, "model_dump") else dict(response)
        usage = self._usage(data, response)
        choices = data.get("choices") or []
        if not choices:
            return Completion(
                finish_reason="error",
                parse_errors=["the API answered with no choices: nothing was generated (empty response)"],
                usage=usage,
                model=self.config.model,
            )
        choice = choices[0]
        message = choice.get("message") or {}
        text = message.get("content") or ""
        finish = choice.get("finish_reason")
        fmt = self.config.tool_format
        calls, errors = parse_openai_tool_calls(message.get("tool_calls"))
        if fmt != "openai":
            if finish == "stop":
                text = restore_tool_stop(text, tool_stop_strings(tools, fmt))
            text_calls, text_errors = parse_tool_calls(text, tools, fmt)
            calls, errors = calls + text_calls, errors + text_errors
        logprobs, entropies, top_k = _token_stats(choice.get("logprobs"))
        completion = Completion(
            text=text,
            tool_calls=calls,
            parse_errors=errors,
            finish_reason=finish,
            logprobs=logprobs,
            entropies=entropies,
            entropy_kind="topk" if entropies is not None else "none",
            top_k=top_k,
            usage=usage,
            model=self.config.model,
            # Text-format calls live in the text: an OpenAI ``tool_calls`` field in the
            # history would make the API expect tool messages that never come.
            assistant_message=None if fmt == "openai" else {"role": "assistant", "content": text},
        )
        return self._without_secrets(completion)

    def _without_secrets(self, completion: Completion) -> Completion:
        """Replace known secret values a server or model echoed into the output."""
        raw = completion.model_dump_json()
        clean = scrub(raw, [self.config.key_value()], patterns=False)
        return completion if clean == raw else Completion.model_validate_json(clean)

    def _usage(self, data: Mapping[str, Any], response: Any) -> Usage:
        raw = data.get("usage") or {}
        details = raw.get("prompt_tokens_details") or {}
        return Usage(
            prompt_tokens=int(raw.get("prompt_tokens") or 0),
            completion_tokens=int(raw.get("completion_tokens") or 0),
            cached_tokens=int(details.get("cached_tokens") or 0),
            cost_usd=self._cost(response),
        )

    def _cost(self, response: Any) -> float | None:
        """Dollar cost from LiteLLM's local price map; ``None`` for models it does not price."""
        hidden = getattr(response, "_hidden_params", None)
        if isinstance(hidden, Mapping) and "response_cost" in hidden:
            cost = hidden["response_cost"]  # LiteLLM priced the call already; do not price it twice
        else:
            try:
                cost = self._ensure_litellm().completion_cost(completion_response=response, model=self.config.model)
            except Exception:  # unmapped model, odd usage block: cost is unknown, not an error
                return None
        return float(cost) if isinstance(cost, int | float) and math.isfinite(cost) else None


def _token_stats(block: Any) -> tuple[list[float] | None, list[float] | None, int | None]:
    """(logprobs, top-k entropies, k) from a choice's ``logprobs`` block; ``None`` where absent."""
    content = block.get("content") if isinstance(block, Mapping) else None
    if not content:
        return None, None, None
    logprobs = [float(t.get("logprob", float("nan"))) for t in content]
    tops = [[float(a.get("logprob", float("-inf"))) for a in (t.get("top_logprobs") or [])] for t in content]
    if not any(tops):
        return logprobs, None, None
    return logprobs, [topk_entropy(alts) for alts in tops], max(len(alts) for alts in tops)


def from_model_string(model: str, *, cache: ResponseCache | None = None, **kwargs: Any) -> LiteLLMPolicy:
    """Build a policy from a LiteLLM model string (``openai/gpt-4o-mini``, ``hosted_vllm/...``).

    Args:
        model: The model string.
        cache: Optional response cache.
        **kwargs: Other :class:`LiteLLMConfig` fields (``api_base``, ``api_key``, ``tool_format``...).

    Returns:
        The policy; nothing is imported or contacted until the first ``generate``.
    """
    return LiteLLMPolicy(model, cache=cache, **kwargs)
