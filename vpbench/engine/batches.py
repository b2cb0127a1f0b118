"""Training batches as a pure function of (seed, step), so a resumed run sees the same data.

Epoch ``e`` visits a permutation of the training split seeded by ``(seed, e)``; the batch
at global step ``k`` is batch ``k mod steps_per_epoch`` of epoch ``k div steps_per_epoch``.
A split generated on the fly implements ``set_epoch(e)`` so its items also depend on ``e``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..errors import DataError

__all__ = ["train_batches", "eval_batches"]


def _len(split: Dataset[Tensor], what: str) -> int:
    try:
        return len(split)  # type: ignore[arg-type]
    except TypeError as exc:
        raise DataError(f"the {what} split must be a map-style dataset with a length") from exc


def train_batches(
    split: Dataset[Tensor], *, batch_size: int, seed: int, start_step: int, num_workers: int = 0
) -> Iterator[Tensor]:
    """Yield float batches ``[B, T+S, C, H, W]`` forever, starting at ``start_step``."""
    n = _len(split, "train")
    if n < batch_size:
        raise DataError(f"the train split has {n} clips, fewer than train.batch_size={batch_size}; lower it")
    per_epoch = n // batch_size
    epoch, offset = divmod(start_step, per_epoch)
    while True:
        set_epoch = getattr(split, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)
        gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=gen)[: per_epoch * batch_size].view(per_epoch, batch_size)
        batches: list[list[int]] = order[offset:].tolist()
        # an own generator: creating the loader must not consume the global random stream
        # (it draws the workers' base seed), or a resumed run would diverge
        loader: DataLoader[Any] = DataLoader(
            split, batch_sampler=batches, num_workers=num_workers, generator=torch.Generator().manual_seed(seed + epoch)
        )
        for batch in loader:
            yield batch.float()
        epoch, offset = epoch + 1, 0


def eval_batches(split: Dataset[Tensor], *, batch_size: int, limit: int | None, num_workers: int = 0) -> Iterator[tuple[int, Tensor]]:
    """Yield ``(first_index, batch)`` over the first ``limit`` clips in order."""
    n = _len(split, "evaluation")
    if limit is not None:
        n = min(n, limit)
    indices = list(range(n))
    batches = [indices[i : i + batch_size] for i in range(0, n, batch_size)]
    loader: DataLoader[Any] = DataLoader(
        split, batch_sampler=batches, num_workers=num_workers, generator=torch.Generator().manual_seed(0)
    )
    for idx, batch in zip(batches, loader):
        yield idx[0], batch.float()
