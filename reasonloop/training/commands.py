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
        ``{"out_dir", "step", "last": last step's metrics}``.
    """
    from reasonloop.training.config import load_config
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
    return {"out_dir": str(trainer.out_dir), "step": trainer.step, "last": history[-1] if history else {}}


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
    """Fine-tune a local checkpoint on the policy tokens of recorded trajectories; save it to ``out``.

    Args:
        trajectories: JSONL of trajectories recorded with this model's tokenizer (token ids present).
        model: Local checkpoint directory (or ``hf:PATH``).
        out: Where the fine-tuned model and tokenizer are saved.
        steps: Optimiser steps.
        lr: AdamW learning rate.
        batch_size: Trajectories per step.
        seed: Example order.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reasonloop.training.sft import SFTConfig, run_sft

    path = str(model).removeprefix("hf:")
    if not (Path(path) / "config.json").is_file():
        raise ConfigError(f"no transformers checkpoint at {path}")
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    lm = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    history = run_sft(lm, read_trajectories(trajectories), SFTConfig(steps=steps, lr=lr, batch_size=batch_size, seed=seed),
                      pad_id=int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id))
    target = Path(out)
    lm.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return {"out": str(target), "steps": len(history), "last": dict(history[-1]) if history else {}}


def export_command(trajectories: str | Path, out: str | Path, *, fmt: str = "verl") -> dict[str, Any]:
    """Export a trajectories JSONL to TRL/verl Parquet."""
    from reasonloop.training.export import export_parquet

    path, skipped = export_parquet(read_trajectories(trajectories), out, fmt=fmt)
    return {"out": str(path), "skipped": skipped}
