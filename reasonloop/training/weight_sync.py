"""Pushing the trainer's weights to a completions server after an optimiser step.

A :class:`~reasonloop.training.server_engine.ServerEngine` samples from a server that
holds its own copy of the weights. After every step the trainer calls
``engine.sync_weights()``, which hands the model to a :class:`WeightSync`, chosen by
name from :data:`WEIGHT_SYNCS`:

* ``none``: the server keeps the weights it started with. Rollouts after the first
  step are off-policy; the engine reports the lag in its metrics.
* ``lora_reload``: the LoRA adapter is saved to a directory the server can read and
  loaded with vLLM's documented ``POST /v1/load_lora_adapter`` under a new name (the
  previous one is unloaded with ``/v1/unload_lora_adapter``); later turns ask for that
  name as the model. The server runs with ``--enable-lora`` and
  ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` (vLLM docs, "Dynamically serving LoRA
  Adapters"). A fresh adapter name also gives the new weights their own prefix cache.
* ``checkpoint_reload``: the full weights (LoRA merged) are saved as safetensors and
  reloaded by vLLM's ``disk`` weight-transfer backend through its control-plane routes
  (``/init_weight_transfer_engine``, ``/start_weight_update``, ``/update_weights``
  with ``{"path": ...}``, ``/finish_weight_update``; vLLM docs,
  ``training/weight_transfer/disk.md``), then ``/reset_prefix_cache`` drops the KV
  blocks computed with the old weights. The server runs with ``VLLM_SERVER_DEV_MODE=1``
  and ``--weight-transfer-config '{"backend": "disk"}'``; only recent vLLM versions
  have that backend.

:func:`merged_weights` gives a model's full weights under the base model's names with
LoRA deltas folded in, leaving the trained model untouched (``merge_and_unload``
would strip its adapters).
"""

from __future__ import annotations

import logging
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from reasonloop.errors import ConfigError, PolicyError
from reasonloop.registry import Registry

__all__ = [
    "WEIGHT_SYNCS",
    "CheckpointReload",
    "LoraReload",
    "NoSync",
    "ServerLink",
    "WeightSync",
    "WeightSyncConfig",
    "build_weight_sync",
    "merged_weights",
    "save_merged",
]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class WeightSyncConfig:
    """How a server engine's weights follow the trainer's."""

    kind: str = "none"
    """A :data:`WEIGHT_SYNCS` name: ``none``, ``lora_reload`` or ``checkpoint_reload``."""
    shared_dir: str | None = None
    """Directory the trainer writes adapters or checkpoints to; the server must read it.
    Required by ``lora_reload`` and ``checkpoint_reload``."""
    server_dir: str | None = None
    """The same directory as the server sees it, when mounted elsewhere (absolute);
    defaults to ``shared_dir``."""
    name_prefix: str = "policy"
    """Adapter and checkpoint names are ``PREFIX-RUN-VERSION`` (``RUN`` is random per
    engine, so a resumed run never collides with adapters a server still holds)."""

    def __post_init__(self) -> None:
        if not self.kind:
            raise ConfigError("weight_sync.kind must not be empty")
        if not self.name_prefix or "/" in self.name_prefix:
            raise ConfigError("weight_sync.name_prefix must be a non-empty name without '/'")
        if self.server_dir is not None and not Path(self.server_dir).is_absolute():
            raise ConfigError(f"weight_sync.server_dir must be absolute, got {self.server_dir!r}")


@dataclass(frozen=True, kw_only=True)
class ServerLink:
    """Where the control calls go."""

    base_url: str
    """The OpenAI-compatible root, e.g. ``http://host:8000/v1`` (LoRA routes live under it)."""
    headers: dict[str, str] = field(default_factory=dict)
    """Extra headers (authorisation)."""
    timeout_s: float = 300.0
    """Per-request timeout."""

    @property
    def root(self) -> str:
        """The server root without ``/v1`` (the weight-transfer routes live there)."""
        return self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url

    def post(self, url: str, body: dict[str, Any] | None = None) -> None:
        """POST ``body``; a failure raises :class:`PolicyError` with the server's answer."""
        import httpx

        try:
            reply = httpx.post(url, json=body, headers=self.headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise PolicyError(f"weight sync: {url} unreachable ({type(exc).__name__}: {exc})", retryable=True) from None
        if reply.status_code != 200:
            raise PolicyError(f"weight sync: {url} answered {reply.status_code}: {reply.text[:300]}",
                              status_code=reply.status_code)


@runtime_checkable
class WeightSync(Protocol):
    """Makes a server sample with the trainer's current weights."""

    @property
    def kind(self) -> str:
        """The registry name."""
        ...

    @property
    def updates_server(self) -> bool:
        """``False`` when the server keeps its weights (sampling goes off-policy)."""
        ...

    def push(self, model: Any, link: ServerLink, version: int) -> str | None:
        """Push ``model``'s weights as ``version``; returns the model name to sample
        with from now on (``None``: unchanged).

        Raises:
            PolicyError: The server refused or could not be reached (its weights are
                then unknown: the run must not go on as if they were new).
        """
        ...


class NoSync:
    """The server's weights stay as they are."""

    kind = "none"
    updates_server = False

    def push(self, model: Any, link: ServerLink, version: int) -> str | None:
        return None


class _DirectorySync:
    """Shared part of the syncs that write to a directory the server reads."""

    def __init__(self, config: WeightSyncConfig, kind: str) -> None:
        if not config.shared_dir:
            raise ConfigError(f"weight_sync {kind!r} needs shared_dir (a directory the server can read)")
        self.config = config
        self.local_dir = Path(config.shared_dir).expanduser().resolve()
        self.server_dir = Path(config.server_dir) if config.server_dir else self.local_dir
        self.run = secrets.token_hex(3)
        self.current: str | None = None

    def name(self, version: int) -> str:
        return f"{self.config.name_prefix}-{self.run}-{version}"

    def forget(self, name: str | None) -> None:
        if name is not None:
            shutil.rmtree(self.local_dir / name, ignore_errors=True)


class LoraReload(_DirectorySync):
    """Save the adapter, load it under a new name, unload the previous one."""

    kind = "lora_reload"
    updates_server = True

    def __init__(self, config: WeightSyncConfig) -> None:
        super().__init__(config, self.kind)

    def push(self, model: Any, link: ServerLink, version: int) -> str | None:
        if not hasattr(model, "peft_config"):
            raise PolicyError("weight_sync 'lora_reload' pushes a LoRA adapter, but the trained model has none "
                              "(train with optim.lora, or use checkpoint_reload)")
        name = self.name(version)
        model.save_pretrained(str(self.local_dir / name), safe_serialization=True)
        link.post(f"{link.base_url}/load_lora_adapter", {"lora_name": name, "lora_path": str(self.server_dir / name)})
        previous, self.current = self.current, name
        if previous is not None:
            try:  # the new adapter already serves; a stale one left loaded only costs memory
                link.post(f"{link.base_url}/unload_lora_adapter", {"lora_name": previous})
            except PolicyError as exc:
                _log.warning("could not unload adapter %s: %s", previous, exc)
            self.forget(previous)
        return name


class CheckpointReload(_DirectorySync):
    """Save the merged weights, reload them through vLLM's ``disk`` weight-transfer backend."""

    kind = "checkpoint_reload"
    updates_server = True

    def __init__(self, config: WeightSyncConfig) -> None:
        super().__init__(config, self.kind)
        self._ready = False

    def push(self, model: Any, link: ServerLink, version: int) -> str | None:
        name = self.name(version)
        save_merged(model, self.local_dir / name)
        if not self._ready:
            link.post(f"{link.root}/init_weight_transfer_engine", {"init_info": {}})
            self._ready = True
        link.post(f"{link.root}/start_weight_update")
        link.post(f"{link.root}/update_weights", {"update_info": {"path": str(self.server_dir / name)}})
        link.post(f"{link.root}/finish_weight_update")
        link.post(f"{link.root}/reset_prefix_cache")  # cached KV blocks were computed with the old weights
        previous, self.current = self.current, name
        self.forget(previous)
        return None


WEIGHT_SYNCS: Registry[Callable[[WeightSyncConfig], WeightSync]] = Registry("weight sync")
WEIGHT_SYNCS.register("none", lambda config: NoSync())
WEIGHT_SYNCS.register("lora_reload", LoraReload)
WEIGHT_SYNCS.register("checkpoint_reload", CheckpointReload)


def build_weight_sync(config: WeightSyncConfig | None = None) -> WeightSync:
    """The weight sync ``config.kind`` names (``none`` by default).

    Raises:
        UnknownNameError: No such kind (the message lists the valid ones).
        ConfigError: The kind needs a setting ``config`` lacks.
    """
    config = config or WeightSyncConfig()
    return WEIGHT_SYNCS.get(config.kind)(config)


# -- weights ---------------------------------------------------------------------------


def _lora_deltas(base: Any) -> dict[str, Any]:
    """``{module name: delta weight}`` of every LoRA layer's active, unmerged adapters."""
    deltas: dict[str, Any] = {}
    for name, module in base.named_modules():
        if not (hasattr(module, "get_delta_weight") and hasattr(module, "base_layer")):
            continue
        if getattr(module, "disable_adapters", False):
            continue
        known = {*getattr(module, "lora_A", {}), *getattr(module, "lora_embedding_A", {})}
        merged = set(getattr(module, "merged_adapters", ()))
        for adapter in module.active_adapters:
            if adapter not in known or adapter in merged:
                continue
            if getattr(module, "use_dora", {}).get(adapter):
                raise PolicyError(f"{name}: DoRA adapters cannot be folded into plain weights here; use plain LoRA")
            delta = module.get_delta_weight(adapter)
            deltas[name] = delta if name not in deltas else deltas[name] + delta
    return deltas


def _base_name(name: str) -> str | None:
    """The base model's name of a peft-wrapped parameter (``None``: not a base weight)."""
    if "lora_" in name or ".original_module." in name:
        return None
    if ".modules_to_save." in name:
        head, _, tail = name.partition(".modules_to_save.")
        return f"{head}.{tail.split('.', 1)[1]}"
    return name.replace(".base_layer.", ".")


def merged_weights(model: Any) -> Iterator[tuple[str, Any]]:
    """``(name, tensor)`` of ``model``'s full weights, named as the base model names them.

    A peft model's active LoRA deltas are added to their base weights (the model is
    not changed). Tied weights appear once, as ``named_parameters`` gives them;
    tensors are detached and may share storage with the model's parameters.

    Raises:
        PolicyError: A DoRA adapter (its merge is not a plain sum).
    """
    import torch

    base = model.get_base_model() if hasattr(model, "peft_config") else model
    deltas = _lora_deltas(base)
    with torch.no_grad():
        for raw, param in base.named_parameters():
            name = _base_name(raw)
            if name is None:
                continue
            tensor = param.detach()
            owner, _, leaf = name.rpartition(".")
            if leaf == "weight" and owner in deltas:
                tensor = tensor + deltas[owner].to(tensor.dtype)
            yield name, tensor


def save_merged(model: Any, out: str | Path) -> Path:
    """Write ``model``'s merged weights as ``OUT/model.safetensors`` with its ``config.json``.

    Returns:
        The directory written.
    """
    from safetensors.torch import save_file

    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.contiguous().cpu() for name, t in merged_weights(model)}
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})
    base = model.get_base_model() if hasattr(model, "peft_config") else model
    base.config.save_pretrained(target)
    return target
