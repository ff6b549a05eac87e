"""Masked-language-model pretraining as a LightningModule."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dataeff.models.bert import packed_attention_mask
from dataeff.tasks.base import Task
from dataeff.tasks.masking import IGNORE, Masker, slots_per_row

TARGETS_BUCKET = 128  # the eager head's masked positions per batch, rounded up to a multiple of this


class MLMTask(Task):
    """Pretrain `net` (a `BertForMaskedLM`) with dynamic masking; the vocabulary projection
    runs on the masked positions only, which is most of the saving for small models.

    `compile`: the model and its loss go through `torch.compile` with static shapes. The data
    pads every batch to `data.max_length`, and the head projects a fixed number of slots per row
    (`slots_per_row`, the unused ones ignored), so one compiled graph serves every batch; a
    masked-only head with a count that changes every batch would recompile or need dynamic
    shapes."""

    def __init__(self, net, tokenizer, optimizer, scheduler=None, mask_prob: float = 0.15,
                 name: str = "mlm", objective: str = "val/loss", objective_mode: str = "min",
                 compile: bool = False):
        super().__init__(net, tokenizer, optimizer, scheduler)
        self.save_hyperparameters(ignore=["net", "tokenizer", "optimizer", "scheduler"],
                                  logger=False)
        self.masker = Masker(tokenizer.mask_token_id, tokenizer.all_special_ids, len(tokenizer),
                             mask_prob, static=compile)
        self.masked_loss = torch.compile(self.slotted_loss, dynamic=False) if compile else self.bucketed_loss

    def forward(self, input_ids, attention_mask, labels, segment_ids=None, position_ids=None):
        """Loss, number of correct predictions and number of targets for one masked batch; packed
        rows (`segment_ids`, `position_ids`: `dataeff.data.packing`) attend within each text."""
        if segment_ids is not None:
            attention_mask = packed_attention_mask(segment_ids)
        return self.masked_loss(input_ids, attention_mask, labels, position_ids)

    def bucketed_loss(self, input_ids, attention_mask, labels, position_ids):
        """The head on the masked positions, their count rounded up to a multiple of
        TARGETS_BUCKET (the extra slots ignored). Nearly the least work, and few distinct shapes:
        with a new shape every batch, the allocator's free blocks never fit the next request
        again, and a packed bert_mini run on a CPU grew from 2.1 to 3.1 GB in 100 steps (with
        buckets it stays at 2.0 GB, as fast)."""
        hidden = self.net.bert(input_ids=input_ids, attention_mask=attention_mask,
                               position_ids=position_ids).last_hidden_state.flatten(0, 1)
        labels = labels.flatten()
        positions = (labels != IGNORE).nonzero().squeeze(1)
        count = len(positions)
        positions = F.pad(positions, (0, -count % TARGETS_BUCKET))  # the extra slots read position 0
        gold = labels[positions]
        gold[count:] = IGNORE
        logits = self.net.cls(hidden[positions])
        loss = F.cross_entropy(logits.float(), gold, ignore_index=IGNORE)
        real = gold != IGNORE
        return loss, ((logits.argmax(-1) == gold) & real).sum(), real.sum()

    def slotted_loss(self, input_ids, attention_mask, labels, position_ids):
        """The head on `slots_per_row` positions of each row, the targets first: one shape for
        every batch of the same size. The Masker keeps at most that many targets a row."""
        hidden = self.net.bert(input_ids=input_ids, attention_mask=attention_mask,
                               position_ids=position_ids).last_hidden_state
        targets = labels != IGNORE
        slots = targets.byte().argsort(dim=1, descending=True, stable=True)
        slots = slots[:, :slots_per_row(labels.shape[1], self.hparams.mask_prob)]
        gold = labels.gather(1, slots).flatten()
        picked = hidden.gather(1, slots.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        logits = self.net.cls(picked.flatten(0, 1))
        loss = F.cross_entropy(logits.float(), gold, ignore_index=IGNORE)
        real = gold != IGNORE
        return loss, ((logits.argmax(-1) == gold) & real).sum(), real.sum()

    def training_step(self, batch, batch_idx):
        masked, labels = self.masker(batch["input_ids"])
        loss, _, _ = self(masked, batch["attention_mask"], labels, batch.get("segment_ids"),
                          batch.get("position_ids"))
        self.log("train/loss", loss, batch_size=len(masked))
        return loss

    def validation_step(self, batch, batch_idx):
        # the same masks at every validation, so val/loss is comparable across the run
        generator = torch.Generator(self.device).manual_seed(batch_idx)
        masked, labels = self.masker(batch["input_ids"], generator)
        loss, correct, count = self(masked, batch["attention_mask"], labels)
        self._val_sums += torch.stack([loss.detach().double() * count, correct.double(), count.double()])

    def on_validation_epoch_start(self):
        self._val_sums = torch.zeros(3, dtype=torch.float64, device=self.device)

    def on_validation_epoch_end(self):
        # token-weighted means over the whole validation set, summed across processes
        loss_sum, correct, count = self.all_gather(self._val_sums).view(-1, 3).sum(0)
        loss = (loss_sum / count).item()
        self.log_dict({"val/loss": loss, "val/perplexity": math.exp(min(loss, 50.0)),
                       "val/masked_accuracy": (correct / count).item()},
                      prog_bar=True)
