"""Entry points behind ``reasonloop train``, ``reasonloop train --resume`` and ``reasonloop sft``.

Plain functions (the CLI layer wires them to typer); each returns what it wrote and
raises :class:`~reasonloop.errors.ConfigError` on bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reasonloop.errors import ConfigError
from reasonloop.trajectory.schema import Trajectory

__all__ = ["export_command", "read_trajectories", "sft_command", "train_command"]


def train_command(config: str | Path | None = None, *, resume: str | Path | None = None, steps: int | None = None,
                  progress: bool = True) -> dict[str, Any]:
    """Train from ``config`` (a YAML file), or continue the run directory ``resume``.

    Args:
        config: Training config (YAML); with ``resume``, must hash like the run's.
        resume: A run's ``out_dir`` to continue from its latest complete checkpoint.
        steps: Train up to this step instead of ``optim.steps``.
        progress: Show a rich progress bar.

    Returns:
        ``{"out_dir", "step", "last": last step's metrics, "model", "adapter"}``: what
        was trained is saved under ``out_dir`` (see :func:`~reasonloop.training.setup.save_trained`)
        and loads back with ``--model MODEL`` (and ``--adapter ADAPTER`` when LoRA trained).
    """
    from reasonloop.training.config import load_config, resolve_model_path
    from reasonloop.training.setup import save_trained
    from reasonloop.training.trainer import Trainer

    if config is None and resume is None:
        raise ConfigError("give a config file, or --resume RUN_DIR")
    if resume is not None:
        cfg = load_config(config) if config is not None else None
        trainer = Trainer.resume(resume, cfg)
    else:
        assert config is not None
        cfg = load_config(config)
        if progress and not cfg.logging.progress:
            cfg = cfg.model_copy(update={"logging": cfg.logging.model_copy(update={"progress": True})})
        trainer = Trainer(cfg)
    history = trainer.train(steps)
    result: dict[str, Any] = {"out_dir": str(trainer.out_dir), "step": trainer.step,
                              "last": history[-1] if history else {}}
    if trainer.dp.is_main:
        model_cfg = trainer.config.model
        source = resolve_model_path(model_cfg.path) if model_cfg.kind == "hf" and model_cfg.path else None
        result.update(save_trained(trainer.model, trainer.tokenizer, trainer.out_dir, source))
    return result


def read_trajectories(path: str | Path) -> list[Trajectory]:
    """Trajectories from a JSONL file (one per line)."""
    where = Path(path)
    try:
        lines = where.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read trajectories {where}: {exc}") from None
    out = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                out.append(Trajectory.from_json(line))
            except ValueError as exc:
                raise ConfigError(f"{where}:{number}: not a trajectory: {str(exc)[:200]}") from None
    return out


def sft_command(trajectories: str | Path, model: str | Path, out: str | Path, *, steps: int = 100, lr: float = 1e-3,
                batch_size: int = 8, seed: int = 0) -> dict[str, Any]:
    """Fine-tune a local model on the policy tokens of recorded trajectories; save it to ``out``.

    Args:
        trajectories: JSONL of trajectories recorded with this model's tokenizer (token ids present).
        model: Checkpoint directory or ``hf:PATH``, a ``.gguf`` file (or a directory holding
            one), or ``smollm2``/``tiny``.
        out: Where the fine-tuned model and tokenizer are saved (a checkpoint directory,
            ``hf:OUT``; a GGUF base is saved as safetensors).
        steps: Optimiser steps.
        lr: AdamW learning rate.
        batch_size: Trajectories per step.
        seed: Example order.
    """
    from reasonloop.training.config import resolve_model_path
    from reasonloop.training.setup import load_model, save_model
    from reasonloop.training.sft import SFTConfig, run_sft

    source = resolve_model_path(str(model))
    examples = read_trajectories(trajectories)
    tokenizer, lm = load_model(source)
    history = run_sft(lm, examples, SFTConfig(steps=steps, lr=lr, batch_size=batch_size, seed=seed),
                      pad_id=int(tokenizer.pad_token_id))
    target = save_model(lm, tokenizer, out, gguf=source.gguf)
    return {"out": str(target), "steps": len(history), "last": dict(history[-1]) if history else {}}


def export_command(trajectories: str | Path, out: str | Path, *, fmt: str = "verl") -> dict[str, Any]:
    """Export a trajectories JSONL to TRL/verl Parquet."""
    from reasonloop.training.export import export_parquet

    path, skipped = export_parquet(read_trajectories(trajectories), out, fmt=fmt)
    return {"out": str(path), "skipped": skipped}
