"""Lightning callbacks: throughput, NaN guard, the model export, a checkpoint when a run is interrupted."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import RichProgressBar
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities.exceptions import SIGTERMException

from dataeff.errors import UserError

log = logging.getLogger(__name__)
NEVER = 2**62  # NaNGuard: no bad step on this rank


class TokenThroughput(pl.Callback):
    """Log `train/tokens_per_sec` (real text tokens, all processes) and, for image batches,
    `train/examples_per_sec`, over windows of N steps. Counts stay on the device until a window
    ends, so no step waits for the GPU."""

    def __init__(self, every_n_steps: int = 10):
        self.every_n_steps = every_n_steps
        self._tokens, self._examples, self._batches, self._start = 0, 0, 0, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self._start is None:
            self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if "attention_mask" in batch:
            self._tokens = self._tokens + batch["attention_mask"].sum()
        self._examples += len(batch["labels"]) if "labels" in batch else 0
        self._batches += 1  # not batch_idx: it restarts every epoch, and small subsets have short ones
        if self._batches % self.every_n_steps == 0:
            elapsed = max(time.perf_counter() - self._start, 1e-9) / trainer.world_size
            tokens = int(self._tokens)
            if tokens:
                pl_module.log("train/tokens_per_sec", tokens / elapsed, rank_zero_only=True)
            if "pixel_values" in batch:
                pl_module.log("train/examples_per_sec", self._examples / elapsed, rank_zero_only=True)
            self._tokens, self._examples, self._batches, self._start = 0, 0, 0, None


class NaNGuard(pl.Callback):
    """Stop on a non-finite loss with a message that says what to change; checkpoints stay good.

    The first bad step is noted on the device every step and read every `every_n_steps` and before
    each validation (so no checkpoint is saved after it): no per-step host sync. Under DDP all
    processes read it together and take the maximum, so a NaN on one rank stops every rank
    instead of leaving the others waiting in an all-reduce."""

    def __init__(self, every_n_steps: int = 10):
        self.every_n_steps = every_n_steps
        self._bad_step = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs  # {}: a skipped step
        if loss is not None:
            if self._bad_step is None:
                self._bad_step = torch.full((), -1, dtype=torch.long, device=loss.device)
            step = torch.full_like(self._bad_step, trainer.global_step)
            first_bad = (self._bad_step < 0) & ~torch.isfinite(loss.detach())
            self._bad_step = torch.where(first_bad, step, self._bad_step)
        if trainer.global_step % self.every_n_steps == 0:
            self._check(trainer)

    def on_validation_start(self, trainer, pl_module):
        if trainer.state.fn == TrainerFn.FITTING:
            self._check(trainer)

    def on_train_end(self, trainer, pl_module):
        self._check(trainer)

    def _check(self, trainer) -> None:
        mine = NEVER if self._bad_step is None or self._bad_step < 0 else self._bad_step
        bad_step = int(trainer.strategy.reduce(torch.as_tensor(mine, device=trainer.strategy.root_device),
                                               reduce_op="min"))  # the first rank's first bad step
        if bad_step != NEVER:
            raise UserError(
                f"The training loss became NaN or infinite at step {bad_step}. Lower "
                "the learning rate (task.optimizer.lr), clip gradients "
                "(trainer.gradient_clip_val=1.0), or use trainer.precision=bf16-mixed instead of "
                "16-mixed. The last good checkpoint is in the run's checkpoints/ folder.")


class ExportModel(pl.Callback):
    """The trained network as a Hugging Face folder (`save_pretrained`, with its tokenizer), for
    every task the best-on-validation weights: read from the best checkpoint by rank 0 (no
    collective needed), or, without one (validation never ran, fast_dev_run), the current weights,
    gathered from all processes under FSDP. After the test when there is one, else when training
    ends; both hooks run before Lightning tears the strategy down. `step` is the step exported."""

    def __init__(self, dirpath: str | Path, after_test: bool):
        self.dirpath, self.after_test = Path(dirpath), after_test
        self.step: int | None = None

    def on_train_end(self, trainer, pl_module):
        if not self.after_test:
            self._export(trainer, pl_module)

    def on_test_end(self, trainer, pl_module):
        self._export(trainer, pl_module)

    def _export(self, trainer, pl_module) -> None:
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if best and Path(best).is_file():  # the same path on every rank: ModelCheckpoint shares it
            state, self.step = None, None
            if trainer.is_global_zero:
                checkpoint = torch.load(best, map_location="cpu", weights_only=True, mmap=True)
                state, self.step = checkpoint["state_dict"], checkpoint["global_step"]
        else:
            state, self.step = trainer.strategy.lightning_module_state_dict(), trainer.global_step
        if trainer.is_global_zero:
            weights = {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}
            pl_module.net.save_pretrained(self.dirpath, state_dict=weights)
            if pl_module.tokenizer is not None:
                pl_module.tokenizer.save_pretrained(self.dirpath)


class BudgetProgressBar(RichProgressBar):
    """Lightning's progress bar, whose title counts epochs against `max_epochs - 1`: under a steps
    budget (max_epochs=-1) that read "Epoch 299/-2". Here: "Epoch 299" then, "Epoch 2/9" otherwise.

    It shows the logged training loss, read once every `log_every_n_steps` optimizer steps, as the
    logger reads it. A loss logged with `prog_bar=True` is read back from the device after every
    batch, which on a GPU makes the host wait for each step to finish before it queues the next."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._loss, self._read_at = None, None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        due = self._read_at is None or (trainer.global_step != self._read_at
                                        and trainer.global_step % trainer.log_every_n_steps == 0)
        if due and (loss := trainer.callback_metrics.get("train/loss")) is not None:
            # the loss as logged, not divided by accumulate_grad_batches as the step's output is
            self._loss, self._read_at = float(loss), trainer.global_step
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def get_metrics(self, trainer, pl_module):
        shown = super().get_metrics(trainer, pl_module)
        return shown if self._loss is None else {**shown, "train/loss": self._loss}

    def _get_train_description(self, current_epoch: int) -> str:
        last = self.trainer.max_epochs
        text = f"Epoch {current_epoch}" + (f"/{last - 1}" if last is not None and last > 0 else "")
        return f"{text:{len(self.validation_description)}}"  # as wide as "Validation": no flicker


class CheckpointOnInterrupt(pl.Callback):
    """Ctrl-C or SIGTERM mid-run: save `interrupted.ckpt`, resumable with ckpt_path=..."""

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)

    def on_exception(self, trainer, pl_module, exception):
        interrupted = isinstance(exception, (KeyboardInterrupt, SIGTERMException))
        if interrupted and trainer.world_size == 1:  # a collective save could hang under DDP
            path = self.dirpath / "interrupted.ckpt"
            trainer.save_checkpoint(path)
            log.warning("Interrupted at step %d; resume with ckpt_path=%s",
                        trainer.global_step, path)
