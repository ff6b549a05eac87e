"""What every task shares: a `net` and its tokenizer, the optimizer and schedule made from the
task's `optimizer`/`scheduler` partials, clipping that works under every strategy, and checkpoints
that carry the tokenizer and the net's config (resume and transfer need no other file)."""

from __future__ import annotations

import pytorch_lightning as pl

from dataeff.checkpoints import annotate
from dataeff.tasks.optim import clip_gradients, optimizer_and_schedule


class Task(pl.LightningModule):
    confusion = None  # a classifier's [true, predicted] test counts, once it has tested

    def __init__(self, net, tokenizer, optimizer, scheduler=None):
        super().__init__()
        self.net, self.tokenizer = net, tokenizer
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler

    def on_save_checkpoint(self, checkpoint):
        annotate(checkpoint, self)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        clip_gradients(self, optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_optimizers(self):
        return optimizer_and_schedule(self)

    def schedule_steps(self) -> int:
        """The optimizer steps the learning-rate schedule spans: the trainer's budget."""
        return int(self.trainer.estimated_stepping_batches)
