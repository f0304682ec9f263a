"""Policies from model strings.

* ``hf:PATH``: a local Hugging Face model directory (token-in, token-out).
* ``replay:FILE``: recorded trajectories (JSONL) served back deterministically.
* anything else: a LiteLLM model string (``openai/gpt-4o-mini``,
  ``anthropic/claude-...``, ``hosted_vllm/Qwen/Qwen2.5-7B-Instruct``, ``ollama/...``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reasonloop.errors import ConfigError
from reasonloop.policy.base import Policy

__all__ = ["load_policy"]


def load_policy(model: str, **options: Any) -> Policy:
    """Build the policy a model string names.

    Args:
        model: ``hf:PATH``, ``replay:FILE`` or a LiteLLM model string.
        **options: Passed to the policy's constructor (``tool_format``, ``api_base``,
            ``device``...); ``None`` values are dropped. ``cache_path`` gives API
            models a response cache; local and replay policies ignore it.
    """
    options = {k: v for k, v in options.items() if v is not None}
    model = model.strip()
    if not model:
        raise ConfigError("model: empty model string")
    local_only = {k: v for k, v in options.items() if k not in ("cache_path", "api_base")}
    if model.startswith("hf:"):
        path = Path(model[3:]).expanduser()
        if not path.exists():
            raise ConfigError(f"model: no local model at {path}")
        from reasonloop.policy.hf import HFPolicy

        return HFPolicy.from_pretrained(path, **local_only)
    if model.startswith("replay:"):
        path = Path(model[7:]).expanduser()
        if not path.is_file():
            raise ConfigError(f"model: no recording file at {path}")
        from reasonloop.policy.replay import ReplayPolicy

        return ReplayPolicy.from_jsonl(path, **local_only)
    from reasonloop.policy.litellm import LiteLLMPolicy

    cache_path = options.pop("cache_path", None)
    cache = None
    if cache_path is not None:
        from reasonloop.policy.cache import ResponseCache

        cache = ResponseCache(cache_path)
    return LiteLLMPolicy(model=model, cache=cache, **options)
