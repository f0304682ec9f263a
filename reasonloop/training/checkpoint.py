"""Atomic training checkpoints: a checkpoint is either complete or ignored.

Layout under the run's checkpoint root::

    step-00000010/          model.pt optimizer.pt scheduler.pt rng.pt state.json COMPLETE
    .tmp-step-00000020-<pid>/   (a write in progress, or one a crash interrupted)
    frozen/                 model.pt fingerprint.json   (LoRA runs: the frozen base, written once)

A run whose model has frozen parameters (LoRA) keeps only the trainable ones in each
checkpoint; the frozen ones never change during the run, so :func:`save_frozen` writes
them once (atomically, the same way) and each checkpoint's state names their fingerprint.

A checkpoint is written into a temporary directory, every file fsynced, the
``COMPLETE`` marker written and fsynced last, the directory renamed into place
(atomic on POSIX) and the root fsynced. A reader only takes directories whose
marker exists and names the files that are there, so a process killed at any point
of a write leaves the previous complete checkpoint as the latest.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

from reasonloop.errors import ConfigError

__all__ = [
    "COMPLETE",
    "capture_rng",
    "complete_checkpoints",
    "latest_checkpoint",
    "load_checkpoint",
    "restore_rng",
    "load_frozen",
    "save_checkpoint",
    "save_frozen",
]

COMPLETE = "COMPLETE"
_PREFIX = "step-"
FROZEN = "frozen"


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def capture_rng() -> dict[str, Any]:
    """The python, numpy and torch RNG states (torch's as a tensor, the others JSON-safe)."""
    import numpy as np
    import torch

    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, np.asarray(keys).tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Restore what :func:`capture_rng` captured."""
    import numpy as np
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(root: str | Path, step: int, tensors: dict[str, Any], state: dict[str, Any], *,
                    keep: int = 2) -> Path:
    """Write checkpoint ``step`` atomically and keep only the newest ``keep``.

    Args:
        root: Checkpoint root directory (created if missing).
        step: Training step the checkpoint resumes after.
        tensors: Name -> object for ``torch.save`` (model, optimizer, scheduler, rng).
        state: JSON-safe run state (config hash, data position, RNG states...).
        keep: Complete checkpoints to keep.

    Returns:
        The checkpoint directory.
    """
    import torch

    base = Path(root)
    base.mkdir(parents=True, exist_ok=True)
    name = f"{_PREFIX}{step:08d}"
    tmp = base / f".tmp-{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    files = []
    for key, obj in tensors.items():
        path = tmp / f"{key}.pt"
        torch.save(obj, path)
        _fsync_file(path)
        files.append(path.name)
    (tmp / "state.json").write_text(json.dumps({**state, "step": step}, sort_keys=True), encoding="utf-8")
    _fsync_file(tmp / "state.json")
    files.append("state.json")
    (tmp / COMPLETE).write_text(json.dumps({"step": step, "files": sorted(files)}), encoding="utf-8")
    _fsync_file(tmp / COMPLETE)
    _fsync_dir(tmp)
    final = base / name
    if final.exists():  # a re-run of the same step after a resume: replace it
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(base)
    for old in complete_checkpoints(base)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _is_complete(path: Path) -> bool:
    marker = path / COMPLETE
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and all((path / f).is_file() for f in info.get("files", []))


def complete_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoint directories under ``root``, oldest first."""
    base = Path(root)
    if not base.is_dir():
        return []
    found = [p for p in base.iterdir() if p.is_dir() and p.name.startswith(_PREFIX) and _is_complete(p)]
    return sorted(found, key=lambda p: p.name)


def latest_checkpoint(root: str | Path) -> Path | None:
    """The newest complete checkpoint (``None`` when there is none); stale temp dirs are removed."""
    base = Path(root)
    if base.is_dir():
        for stale in base.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
    found = complete_checkpoints(base)
    return found[-1] if found else None


def load_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(tensors, state)`` of a complete checkpoint.

    Raises:
        ConfigError: the directory is not a complete checkpoint.
    """
    import torch

    where = Path(path)
    if not _is_complete(where):
        raise ConfigError(f"{where} is not a complete checkpoint (no {COMPLETE} marker or files missing)")
    state = json.loads((where / "state.json").read_text(encoding="utf-8"))
    tensors = {p.stem: torch.load(p, map_location="cpu", weights_only=True) for p in sorted(where.glob("*.pt"))}
    return tensors, state


def save_frozen(root: str | Path, tensors: dict[str, Any]) -> str:
    """Write the frozen parameters once under ``root/frozen``; returns their fingerprint.

    Idempotent: an existing complete copy is kept (its fingerprint is returned).
    """
    import hashlib

    import torch

    base = Path(root)
    final = base / FROZEN
    marker = final / "fingerprint.json"
    if marker.is_file():
        return str(json.loads(marker.read_text(encoding="utf-8"))["fingerprint"])
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".tmp-{FROZEN}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    torch.save(tensors, tmp / "model.pt")
    _fsync_file(tmp / "model.pt")
    digest = hashlib.sha256()
    with open(tmp / "model.pt", "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    fingerprint = digest.hexdigest()[:16]
    (tmp / "fingerprint.json").write_text(json.dumps({"fingerprint": fingerprint, "tensors": len(tensors)}),
                                           encoding="utf-8")
    _fsync_file(tmp / "fingerprint.json")
    _fsync_dir(tmp)
    os.rename(tmp, final)
    _fsync_dir(base)
    return fingerprint


def load_frozen(root: str | Path, fingerprint: str) -> dict[str, Any]:
    """The frozen parameters a checkpoint refers to.

    Raises:
        ConfigError: ``root/frozen`` is missing, incomplete or holds other weights.
    """
    import torch

    where = Path(root) / FROZEN
    try:
        found = json.loads((where / "fingerprint.json").read_text(encoding="utf-8"))["fingerprint"]
    except (OSError, ValueError, KeyError):
        raise ConfigError(f"{where} holds no complete copy of the frozen weights this checkpoint needs") from None
    if found != fingerprint:
        raise ConfigError(f"{where} holds frozen weights {found}, the checkpoint was written over {fingerprint}")
    return dict(torch.load(where / "model.pt", map_location="cpu", weights_only=True))
