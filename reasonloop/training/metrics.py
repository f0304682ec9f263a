"""Training metrics: one JSON line per step, plus optional TensorBoard, W&B and a progress bar.

The JSONL file is the record; TensorBoard and W&B are mirrors used only when the
package is installed and the config asks for them (a missing package is reported
once, not raised). On resume, lines of steps after the checkpoint are dropped so the
file matches the run that continues.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["MetricsLogger", "read_metrics"]

_log = logging.getLogger(__name__)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The step records of a metrics JSONL file (unreadable lines skipped)."""
    out: list[dict[str, Any]] = []
    p = Path(path)
    if not p.is_file():
        return out
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


class MetricsLogger:
    """Writes step metrics to ``path`` (JSONL) and to the optional sinks."""

    def __init__(self, path: str | Path, *, tensorboard_dir: str | Path | None = None, wandb: bool = False,
                 progress: bool = False, total: int | None = None, run_config: Mapping[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tb: Any = None
        self._wandb: Any = None
        self._progress: Any = None
        self._task: Any = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(tensorboard_dir))
            except Exception as exc:  # tensorboard is optional
                _log.warning("TensorBoard logging off: %s", exc)
        if wandb:
            try:
                import wandb as wb

                self._wandb = wb.init(config=dict(run_config or {}), reinit=True)
            except Exception as exc:  # wandb is optional
                _log.warning("W&B logging off: %s", exc)
        if progress:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(TextColumn("step {task.completed}/{task.total}"), BarColumn(),
                                      TextColumn("{task.description}"), TimeRemainingColumn())
            self._progress.start()
            self._task = self._progress.add_task("", total=total)

    def truncate_after(self, step: int) -> None:
        """Drop records of steps after ``step`` (resuming from that step's checkpoint)."""
        kept = [r for r in read_metrics(self.path) if int(r.get("step", 0)) <= step]
        self.path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in kept), encoding="utf-8")

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        record = {"step": step, **{k: (v if math.isfinite(v) else None) for k, v in metrics.items()}}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
        numeric = {k: float(v) for k, v in metrics.items() if math.isfinite(v)}
        if self._tb is not None:
            for key, value in numeric.items():
                self._tb.add_scalar(key, value, step)
        if self._wandb is not None:
            self._wandb.log(numeric, step=step)
        if self._progress is not None:
            desc = f"reward {metrics.get('reward_mean', float('nan')):.3f} acc {metrics.get('accuracy', float('nan')):.2f}"
            self._progress.update(self._task, completed=step, description=desc)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None
