"""SetFit (Tunstall et al. 2022): few-shot classification with a sentence encoder, in two steps.
The encoder learns from pairs of the labelled examples (`data.examples.PairCollator` batches: the
cosine of two embeddings pulled to 1 for the same class, to 0 for different ones), then a
logistic regression is fit on the embeddings of the labelled examples. Here the head is fit again
before every validation, so `val/accuracy` scores the model as SetFit would deliver it then and
the checkpoint kept (the best on val) holds its own head; it is the net's linear layer, so the
exported `hf_model/` predicts without scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader

from dataeff.data.examples import LabelledCollator
from dataeff.data.labelled import LabelledTextDataModule
from dataeff.errors import UserError
from dataeff.tasks.classify import ClassifyTask


class SetFitTask(ClassifyTask):
    """`net`: a `BertForMeanPooledClassification` with `config.normalize` (models.bert's
    `sentence_encoder_net`); `head`: a partial that makes an unfitted scikit-learn classifier
    with linear `coef_` and `intercept_` (LogisticRegression, as SetFit)."""

    def __init__(self, net, tokenizer, optimizer, scheduler=None, head=None, epochs: int = 1,
                 name: str = "setfit", objective: str = "val/accuracy", objective_mode: str = "max"):
        super().__init__(net, tokenizer, optimizer, scheduler, name=name, objective=objective,
                         objective_mode=objective_mode)
        self.head, self.epochs = head, epochs
        # checkpoints keep plain values only (they load with weights_only): not the head's factory
        self.save_hyperparameters(ignore=["net", "tokenizer", "optimizer", "scheduler", "head"], logger=False)
        net.classifier.requires_grad_(False)  # fit by `head`, not by gradients (nor DDP's reducer)

    def training_step(self, batch, batch_idx):
        """Cosine-similarity loss over the pairs (sentence-transformers' CosineSimilarityLoss)."""
        embeddings = self.net.embed(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        first, second = embeddings.float().chunk(2)
        loss = F.mse_loss(F.cosine_similarity(first, second), batch["similarity"])
        self.log("train/loss", loss, batch_size=len(batch["similarity"]))
        return loss

    def schedule_steps(self) -> int:
        """SetFit's own steps (warm-up, then decay to 0 over its passes over the pairs), not the
        trainer's budget, which only caps them."""
        budget = self.trainer.estimated_stepping_batches
        self.trainer.fit_loop.setup_data()  # the pairs' batches counted (a steps budget skips it)
        per_epoch = math.ceil(self.trainer.num_training_batches / self.trainer.accumulate_grad_batches)
        return max(1, int(min(budget, self.epochs * per_epoch)))

    def on_train_batch_end(self, outputs, batch, batch_idx):
        """SetFit's budget: `epochs` passes over its pairs (how many grows with the labels), then a
        last validation; the trainer's max_steps still caps it."""
        if self.trainer.is_last_batch and self.current_epoch + 1 >= self.epochs:
            self.trainer.should_stop = True

    def on_validation_epoch_start(self):
        self.fit_head()

    def on_test_epoch_start(self):
        if self.trainer.checkpoint_callback is None or not self.trainer.checkpoint_callback.best_model_path:
            self.fit_head()  # no checkpoint holds a head fit on these weights (fast_dev_run)

    @torch.no_grad()
    def fit_head(self) -> None:
        """The head fit on the labelled training examples' embeddings, set as the net's classifier."""
        datamodule = self.trainer.datamodule
        if not isinstance(datamodule, LabelledTextDataModule):
            raise UserError("task=setfit learns from labelled text: choose data=labelled, data=sst2 or "
                            "data=easyvqa_answers.")
        embeddings, labels = [], []
        # every training example on every rank (no DDP shards): each fits the same head
        examples = DataLoader(datamodule.labelled_examples("train"), batch_size=datamodule.batch_size,
                              collate_fn=LabelledCollator(self.tokenizer.pad_token_id))
        for batch in examples:
            batch = {key: value.to(self.device) for key, value in batch.items()}
            embeddings.append(self.net.embed(batch["input_ids"], batch["attention_mask"],
                                             batch["token_type_ids"]).float().cpu())
            labels.append(batch["labels"].cpu())
        head = self.head().fit(torch.cat(embeddings).numpy(), torch.cat(labels).numpy())
        set_linear(self.net.classifier, head.coef_, head.intercept_, head.classes_)


@torch.no_grad()
def set_linear(layer: torch.nn.Linear, coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray) -> None:
    """A fitted linear classifier as `layer` (one output per class) in the rows of the classes it saw;
    for two, scikit-learn's one row is the second class's logit against 0 for the first (the same
    probabilities)."""
    weight = torch.zeros_like(layer.weight)
    bias = torch.full_like(layer.bias, -1e4)  # a class absent from the labelled subset is never predicted
    coef, intercept = torch.as_tensor(coef, dtype=weight.dtype), torch.as_tensor(intercept, dtype=bias.dtype)
    rows = torch.as_tensor(classes, dtype=torch.long)
    if len(rows) == 2:
        coef = torch.cat([torch.zeros_like(coef), coef])
        intercept = torch.cat([torch.zeros_like(intercept), intercept])
    weight[rows], bias[rows] = coef.to(weight.device), intercept.to(bias.device)
    layer.weight.copy_(weight)
    layer.bias.copy_(bias)
