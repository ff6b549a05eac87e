"""Faults injected into a real training run, as Lightning callbacks a test adds from the command
line (`+callbacks.fault._target_=tests.faults.NaNWeightsOnOneRank`)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch


class NaNWeightsOnOneRank(pl.Callback):
    """From optimizer step `step` on, one process's weights are NaN, so its loss is (as after an
    fp16 overflow on one GPU's batch) while the other processes' losses are still finite."""

    def __init__(self, rank: int = 1, step: int = 1):
        self.rank, self.step = rank, step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_rank == self.rank and trainer.global_step == self.step:
            with torch.no_grad():
                for parameter in pl_module.parameters():
                    parameter.fill_(float("nan"))


class OutOfMemoryAt(pl.Callback):
    """At optimizer step `step`, the allocation of a too-large batch fails as CUDA reports it."""

    def __init__(self, step: int = 1):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.11 GiB "
                                         "total capacity; 78.02 GiB already allocated)")
