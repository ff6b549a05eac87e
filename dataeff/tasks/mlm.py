"""Masked-language-model pretraining as a LightningModule."""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from dataeff.checkpoints import annotate
from dataeff.models.bert import packed_attention_mask
from dataeff.tasks.masking import IGNORE, Masker
from dataeff.tasks.optim import clip_gradients, optimizer_and_schedule


class MLMTask(pl.LightningModule):
    """Pretrain `net` (a `BertForMaskedLM`) with dynamic masking; the vocabulary projection
    runs on the masked positions only, which is most of the saving for small models."""

    def __init__(self, net, tokenizer, optimizer, scheduler=None, mask_prob: float = 0.15,
                 name: str = "mlm", objective: str = "val/loss", objective_mode: str = "min"):
        super().__init__()
        self.save_hyperparameters(ignore=["net", "tokenizer", "optimizer", "scheduler"],
                                  logger=False)
        self.net, self.tokenizer = net, tokenizer
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.masker = Masker(tokenizer.mask_token_id, tokenizer.all_special_ids, len(tokenizer),
                             mask_prob)

    def forward(self, input_ids, attention_mask, labels, segment_ids=None, position_ids=None):
        """Loss, number of correct predictions and number of targets for one masked batch; packed
        rows (`segment_ids`, `position_ids`: `dataeff.data.packing`) attend within each text."""
        if segment_ids is not None:
            attention_mask = packed_attention_mask(segment_ids)
        hidden = self.net.bert(input_ids=input_ids, attention_mask=attention_mask,
                               position_ids=position_ids).last_hidden_state
        targets = labels != IGNORE
        logits = self.net.cls(hidden[targets])
        gold = labels[targets]
        loss = F.cross_entropy(logits.float(), gold)
        return loss, (logits.argmax(-1) == gold).sum(), gold.numel()

    def training_step(self, batch, batch_idx):
        masked, labels = self.masker(batch["input_ids"])
        loss, _, _ = self(masked, batch["attention_mask"], labels, batch.get("segment_ids"),
                          batch.get("position_ids"))
        self.log("train/loss", loss, prog_bar=True, batch_size=len(masked))
        return loss

    def validation_step(self, batch, batch_idx):
        # the same masks at every validation, so val/loss is comparable across the run
        generator = torch.Generator(self.device).manual_seed(batch_idx)
        masked, labels = self.masker(batch["input_ids"], generator)
        loss, correct, count = self(masked, batch["attention_mask"], labels)
        self._val_sums += torch.stack([loss.detach().double() * count, correct.double(),
                                       torch.tensor(count, dtype=torch.float64, device=self.device)])

    def on_validation_epoch_start(self):
        self._val_sums = torch.zeros(3, dtype=torch.float64, device=self.device)

    def on_validation_epoch_end(self):
        # token-weighted means over the whole validation set, summed across processes
        loss_sum, correct, count = self.all_gather(self._val_sums).view(-1, 3).sum(0)
        loss = (loss_sum / count).item()
        self.log_dict({"val/loss": loss, "val/perplexity": math.exp(min(loss, 50.0)),
                       "val/masked_accuracy": (correct / count).item()},
                      prog_bar=True)

    def on_save_checkpoint(self, checkpoint):
        annotate(checkpoint, self)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        clip_gradients(self, optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_optimizers(self):
        return optimizer_and_schedule(self)
