"""Evaluation under DDP: every example on exactly one process. Lightning's default
DistributedSampler pads the shards to equal length by repeating examples, so a 1,821-row test
set would be scored as 1,822 and per-class counts would include repeats."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler

from dataeff.data.order import longest_first


class EvalShards(DistributedSampler):
    """Rank r gets examples r, r + world, r + 2 world, ... in order, without padding. Shards may
    differ by one example; the tasks only sync at the epoch's end (metric objects, all_gather),
    never per step, so no process waits on a collective the others do not make."""

    def __init__(self, dataset: Dataset, order: list[int] | None = None):
        super().__init__(dataset, shuffle=False, drop_last=False)
        order = order if order is not None else list(range(len(dataset)))
        self.indices = order[self.rank::self.num_replicas]
        self.num_samples = len(self.indices)

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return self.num_samples


def eval_order(dataset: Dataset, lengths: torch.Tensor | None = None) -> dict:
    """DataLoader arguments for a validation or test split: in order, or longest first given the
    examples' `lengths` (a batch of similar lengths pads little); under DDP a DistributedSampler
    subclass, which Lightning leaves in place."""
    order = longest_first(lengths) if lengths is not None else None
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return {"sampler": EvalShards(dataset, order)}
    return {"shuffle": False} if order is None else {"sampler": order}
