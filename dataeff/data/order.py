"""The order a training split is visited in: a new shuffle every epoch (and every pass of a loader
Lightning cycles within one), optionally grouped by length so that a batch pads little.

Sentences padded to the longest of a random batch are about half padding. Grouped, each batch
holds texts of similar length, and the order of the batches is still random: the technique of
the Hugging Face Trainer's `group_by_length`, with lengths jittered so that a small training set
does not keep the same batches every epoch.
"""

from __future__ import annotations

import torch
from torch.utils.data import Sampler

WINDOW = 50  # units sorted together: long enough to find similar lengths, short enough to mix
JITTER = 0.1  # lengths within about 10% of each other are in random order


class EpochSampler(Sampler):
    """Shuffled `(draw, index)` pairs; Lightning calls `set_epoch` at the start of every epoch. A
    loader that runs out within an epoch (the shorter of two that Lightning cycles, as in
    semi-supervised training) starts another pass: a new draw, so a new order and new
    augmentations, the same again for the same epoch and pass.

    With `lengths`, every `unit` consecutive indices (a batch on each process: batch size x
    world size, since a DDP wrapper deals them out in turn) have similar lengths."""

    PASS_STRIDE = 1_000_001  # draw = epoch + pass x this: unique, and the first pass's draw is the epoch

    def __init__(self, size: int, seed: int = 0, lengths: torch.Tensor | None = None, unit: int = 1):
        self.size, self.seed, self.epoch, self.passes = size, seed, 0, 0
        self.lengths, self.unit = lengths, unit

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.passes = epoch, 0

    def __iter__(self):
        draw = self.epoch + self.passes * self.PASS_STRIDE
        self.passes += 1
        generator = torch.Generator().manual_seed(self.seed + draw)
        order = torch.randperm(self.size, generator=generator)
        if self.lengths is not None:
            order = group_by_length(order, self.lengths, self.unit, generator)
        return iter([(draw, index) for index in order.tolist()])

    def __len__(self) -> int:
        return self.size


def group_by_length(order: torch.Tensor, lengths: torch.Tensor, unit: int,
                    generator: torch.Generator) -> torch.Tensor:
    """`order` (shuffled indices) rearranged into units of similar length, in random order: each
    window of `WINDOW` units is sorted by jittered length, longest first, and cut into units. Only
    the last unit of all may be short, and it stays last, so batches never straddle two units."""
    if len(order) <= unit:
        return order
    noise = JITTER * torch.rand(len(lengths), generator=generator, dtype=torch.float64)
    jittered = lengths.clamp(min=1).double().log() + noise
    units = []
    for window in order.split(WINDOW * unit):
        units += window[jittered[window].argsort(descending=True)].split(unit)
    short = units.pop() if len(units[-1]) < unit else None
    units = [units[i] for i in torch.randperm(len(units), generator=generator)]
    return torch.cat(units + ([short] if short is not None else []))


def longest_first(lengths: torch.Tensor) -> list[int]:
    """Evaluation order: by length, longest first, so a batch pads little and the largest batch,
    which needs the most memory, comes first."""
    return lengths.argsort(descending=True, stable=True).tolist()


def split_key(key) -> tuple[int, int]:
    """Datasets take a plain index (no augmentation: epoch 0) or an (epoch, index) pair."""
    return key if isinstance(key, tuple) else (0, key)
