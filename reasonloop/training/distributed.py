"""Data parallelism across processes started by ``accelerate launch`` (or ``torchrun``).

Each process rolls out its share of a step's prompts (prompt slot ``i`` goes to rank
``i % world``; its sampling seed depends on the slot, not the rank, so the union of
the ranks' groups is the single-process batch), computes its loss scaled by the
*global* loss weight, and the gradients are summed across processes before clipping
and the optimiser step. Every rank then holds the same weights; only rank 0 writes
metrics and checkpoints.

The launcher's environment (``WORLD_SIZE``, ``RANK``, ``MASTER_ADDR``...) decides:
with ``WORLD_SIZE`` > 1 the default process group is initialised (NCCL on CUDA, gloo
on CPU). On a CPU-only machine ``accelerate launch --multi_gpu --num_processes 2``
starts the workers through torchrun; the trainer picks gloo.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["DataParallel"]

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class DataParallel:
    """This process's rank in a data-parallel group (``world == 1``: one process)."""

    rank: int = 0
    world: int = 1

    @classmethod
    def from_env(cls) -> DataParallel:
        """Join the launcher's process group (a no-op without ``WORLD_SIZE`` > 1)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return cls(rank=dist.get_rank(), world=dist.get_world_size())

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, items: Sequence[T]) -> list[tuple[int, T]]:
        """``(slot, item)`` pairs this rank handles."""
        return [(i, item) for i, item in enumerate(items) if i % self.world == self.rank]

    def all_sum(self, value: float) -> float:
        """Sum of ``value`` over the ranks."""
        if self.world == 1:
            return value
        import torch
        import torch.distributed as dist

        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t.item())

    def all_mean(self, metrics: dict[str, float]) -> dict[str, float]:
        """Per-key mean over the ranks (keys must agree)."""
        if self.world == 1:
            return metrics
        keys = sorted(metrics)
        return {k: self.all_sum(float(metrics[k])) / self.world for k in keys}

    def sum_grads(self, params: Iterable[Any]) -> None:
        """Sum every parameter's gradient over the ranks (missing gradients count as zero)."""
        if self.world == 1:
            return
        import torch
        import torch.distributed as dist

        for p in params:
            if not p.requires_grad:
                continue
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad)

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()
