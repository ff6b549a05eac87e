"""Contrastive image-text pretraining (CLIP, Radford et al. 2021): the symmetric InfoNCE loss of
`VisionTextDualEncoderModel` over each batch's image-caption pairs, with a learnable temperature.

Each validation and test encodes every image and caption of the split and logs cross-modal
retrieval (dataeff.tasks.retrieval: recall@1/5/10 both ways, median ranks, and what random
ranking scores) and zero-shot classification: each label is written through `prompt` ("a {}"),
encoded, and an image takes the label whose prompt is nearest.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dataeff.errors import UserError
from dataeff.tasks.base import Task
from dataeff.tasks.retrieval import caption_index, retrieval_scores, text_keys


class ContrastiveTask(Task):
    def __init__(self, net, tokenizer, optimizer, scheduler=None, prompt: str = "a {}",
                 max_logit_scale: float = 100.0, name: str = "contrastive", objective: str = "val/loss",
                 objective_mode: str = "min"):
        if "{}" not in prompt:
            raise UserError(f"task.prompt={prompt!r} has no {{}} where the label goes (e.g. "
                            "task.prompt='a photo of a {}').")
        super().__init__(net, tokenizer, optimizer, scheduler)
        self.save_hyperparameters(ignore=["net", "tokenizer", "optimizer", "scheduler"], logger=False)
        self.encoded: list[dict[str, torch.Tensor]] = []

    def forward(self, batch):
        """transformers' CLIPOutput: the loss, and each image's and text's unit-norm embedding."""
        return self.net(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                        pixel_values=batch["pixel_values"], return_loss=len(batch["pixel_values"]) > 1)

    def training_step(self, batch, batch_idx):
        size = len(batch["pixel_values"])
        if size < 2:  # an epoch's last batch of one pair: nothing to contrast it with, the step is skipped
            return None
        loss = self(batch).loss
        self.log("train/loss", loss, batch_size=size)
        self.log("train/temperature", 1 / self.net.logit_scale.exp().detach(), batch_size=size)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx):
        with torch.no_grad():  # CLIP clips the logit scale at 100, or training can diverge
            self.net.logit_scale.clamp_(max=math.log(self.hparams.max_logit_scale))

    def validation_step(self, batch, batch_idx):
        self._encode(batch, "val")

    def test_step(self, batch, batch_idx):
        self._encode(batch, "test")

    def on_validation_epoch_end(self):
        self._score("val")

    def on_test_epoch_end(self):
        self._score("test")

    def _encode(self, batch, split: str) -> None:
        out, size = self(batch), len(batch["pixel_values"])
        if out.loss is not None:  # a last batch of one pair has nothing to contrast
            self.log(f"{split}/loss", out.loss, sync_dist=True, batch_size=size)
        self.encoded.append({"images": out.image_embeds.float(), "texts": out.text_embeds.float(),
                             "keys": text_keys(batch["input_ids"], batch["attention_mask"]),
                             "labels": batch.get("labels", torch.full((size,), -1, device=self.device))})

    def _score(self, split: str) -> None:
        if not self.encoded or self.trainer.sanity_checking:
            self.encoded.clear()
            return
        parts = {name: torch.cat([e[name] for e in self.encoded]) for name in self.encoded[0]}
        self.encoded.clear()
        gathered = {name: self.all_gather(value).reshape(-1, *value.shape[1:])  # every rank's
                    for name, value in parts.items()}
        first, caption_of_image = caption_index(gathered["keys"])
        scores = retrieval_scores(gathered["images"], gathered["texts"][first], caption_of_image)
        if self.net.config.id2label and (gathered["labels"] >= 0).all():  # data with labels
            scores["zero_shot_accuracy"] = self.zero_shot_accuracy(gathered["images"], gathered["labels"])
        # every rank computed the same scores from the same gathered embeddings (DistributedSampler's
        # padding may repeat a few pictures in them)
        self.log_dict({f"{split}/{name}": value for name, value in scores.items()})

    def zero_shot_accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """Each image classified by the label whose prompt embedding is nearest."""
        names = [self.net.config.id2label[i] for i in range(len(self.net.config.id2label))]
        prompts = self.tokenizer([self.hparams.prompt.format(name) for name in names], padding=True,
                                 return_tensors="pt").to(images.device)
        texts = self.net.get_text_features(input_ids=prompts["input_ids"],
                                           attention_mask=prompts["attention_mask"]).pooler_output
        predicted = (images @ F.normalize(texts.float(), dim=-1).T).argmax(1)
        return float((predicted == labels).float().mean())
