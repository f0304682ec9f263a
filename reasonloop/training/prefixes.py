"""Rows that share a prefix, and the layout that encodes each shared prefix once.

A GRPO group's samples share their whole prompt; later turns share the prompt and
often more. :func:`shared_prefixes` groups rows so that each group's common prefix
is encoded once (a ``[C, Wp]`` batch, left padded), its cache copied to the rows
that share it, and each row's own suffix encoded on top. The sampler
(:mod:`reasonloop.training.batched`) and the policy update
(:mod:`reasonloop.training.update`, with gradients through the shared prefix: the
gradient of a prefix shared by m rows is the sum of the m rows' gradients, exactly
what encoding it m times gives) both use it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["left_padded", "positions_of", "right_padded", "shared_prefixes"]


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def shared_prefixes(prompts: Sequence[Sequence[int]]) -> list[tuple[int, list[int]]]:
    """Rows grouped so that each group's common prefix is encoded once.

    Sorted by their ids, rows that share a prefix are neighbours; the sorted rows are
    cut into runs that minimise the positions to encode (a run of ``m`` rows whose
    prefix is ``p`` encodes ``p + sum(len - p)``). A run's prefix stops at least one
    token short of its shortest prompt, so every row encodes a token of its own.

    Returns:
        ``[(prefix_len, rows), ...]``: every row index exactly once.
    """
    order = sorted(range(len(prompts)), key=lambda i: tuple(prompts[i]))
    lens = [len(prompts[i]) for i in order]
    adjacent = [_common(prompts[order[k]], prompts[order[k + 1]]) for k in range(len(order) - 1)]
    best = [0] + [sum(lens) + 1] * len(order)  # best[j]: fewest positions for the first j sorted rows
    start = list(range(len(order) + 1))
    for j in range(1, len(order) + 1):
        p, total = lens[j - 1] - 1, 0
        for i in range(j - 1, -1, -1):  # the run order[i:j]
            if i < j - 1:
                p = min(p, adjacent[i], lens[i] - 1)
            total += lens[i]
            cost = best[i] + total - (j - i - 1) * p
            if cost < best[j]:
                best[j], start[j] = cost, i
            if p <= 0:
                break  # a longer run shares nothing more
    runs: list[tuple[int, list[int]]] = []
    j = len(order)
    while j > 0:
        i = start[j]
        p = min([lens[k] - 1 for k in range(i, j)] + adjacent[i : j - 1]) if j - i > 1 else lens[i] - 1
        runs.append((max(0, p), [order[k] for k in range(i, j)]))
        j = i
    return runs[::-1]


def left_padded(seqs: Sequence[Sequence[int]], width: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``ids``/``mask`` ``[len(seqs), width]`` with each sequence at the right."""
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, seq in enumerate(seqs):
        if seq:
            ids[i, width - len(seq):] = torch.tensor(list(seq))
            mask[i, width - len(seq):] = 1
    return ids, mask


def positions_of(mask: torch.Tensor) -> torch.Tensor:
    """Position ids ``[B, W]`` counted over the real tokens of ``mask`` (pads: 0 or their row's last)."""
    return (mask.cumsum(-1) - 1).clamp_min(0)


def right_padded(seqs: Sequence[Sequence[int]], width: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``ids``/``mask`` ``[len(seqs), width]`` with each sequence at the left."""
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, seq in enumerate(seqs):
        if seq:
            ids[i, : len(seq)] = torch.tensor(list(seq))
            mask[i, : len(seq)] = 1
    return ids, mask
