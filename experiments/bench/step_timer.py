"""The timing callback the benchmark adds to `dataeff-train` (+callbacks.bench_timer=...)."""

from __future__ import annotations

import pytorch_lightning as pl
from record import Record


class StepTimer(pl.Callback):
    def __init__(self, out: str, device: str = "cpu"):
        self.out, self.record = out, Record(device)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.record.batch(batch)
        self.record.step_end()

    def on_train_end(self, trainer, pl_module):
        self.record.save(self.out)
