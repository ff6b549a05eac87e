"""Classification of text (single sentences or pairs), images or both: fine-tuning or a linear probe."""

from __future__ import annotations

import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score

from dataeff.tasks.base import Task


class ClassifyTask(Task):
    """Train `net` (a `BertForSequenceClassification` or a `FusionModel`: any model that takes the
    batch's tensors as keywords and returns `.loss` and `.logits`); accuracy and macro-F1, and
    after testing `confusion` ([true, predicted] counts over the whole test set, all ranks)."""

    def __init__(self, net, tokenizer, optimizer, scheduler=None,
                 freeze_encoder: bool = False, name: str = "classify",
                 objective: str = "val/accuracy", objective_mode: str = "max", semi=None):
        super().__init__(net, tokenizer, optimizer, scheduler)
        self.save_hyperparameters(ignore=["net", "tokenizer", "optimizer", "scheduler", "semi"], logger=False)
        self.semi = semi  # ssl=...: what the unlabelled batches teach (dataeff.tasks.semi)
        self.unlabelled_seen = self.unlabelled_taught = 0
        # freeze_encoder (a linear probe) is applied by `task.net`, which knows what was pretrained
        num_labels = net.config.num_labels
        # accuracy over examples (micro); torchmetrics defaults to the macro average of recalls
        metrics = MetricCollection({"accuracy": MulticlassAccuracy(num_labels, average="micro"),
                                    "f1_macro": MulticlassF1Score(num_labels, average="macro")})
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.test_confusion = MulticlassConfusionMatrix(num_labels)
        self.confusion = None

    def forward(self, batch):
        return self.net(**batch)

    def training_step(self, batch, batch_idx):
        if self.semi is None:
            loss = self(batch).loss
            self.log("train/loss", loss, batch_size=len(batch["labels"]))
            return loss
        labelled, unlabelled = batch["labelled"], batch["unlabelled"]
        supervised = self(labelled).loss
        unlabelled_loss = self._unlabelled_loss(unlabelled)
        loss = supervised + self.semi.weight_at(self.global_step) * unlabelled_loss
        size = len(labelled["labels"])
        self.log("train/loss", loss, batch_size=size)
        self.log("train/supervised_loss", supervised, batch_size=size)
        return loss

    def _unlabelled_loss(self, batch):
        """The semi-supervised objective on a batch of unlabelled text, and what it did, as metrics:
        the examples seen and those confident enough to teach so far, and (in a simulation, where
        the truth is known) the share of teaching pseudo-labels that were right."""
        teacher = dict(batch["teacher"])
        truth = teacher.pop("labels")
        if "student" in batch:  # a perturbed copy learns from the sentence's prediction
            with torch.no_grad():
                teacher_logits = self.net(**teacher).logits
            student_logits = self.net(**batch["student"]).logits
        else:
            student_logits = self.net(**teacher).logits
            teacher_logits = student_logits.detach()
        loss, stats = self.semi(teacher_logits, student_logits, truth)
        size, ranks = len(truth), self.trainer.world_size  # counted for all processes
        self.unlabelled_seen += size * ranks
        self.unlabelled_taught += int(round(float(stats["mask_rate"]) * size)) * ranks
        self.log_dict({"ssl/loss": loss, "ssl/mask_rate": stats["mask_rate"],
                       "ssl/weight": self.semi.weight_at(self.global_step),
                       "ssl/unlabelled_seen": float(self.unlabelled_seen),
                       "ssl/unlabelled_taught": float(self.unlabelled_taught)}, batch_size=size)
        if float(stats.get("known", 0)) > 0:
            self.log("ssl/pseudo_label_accuracy", stats["correct"] / stats["known"], batch_size=size)
        return loss

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch, batch_idx):
        logits = self._evaluate(batch, "test", self.test_metrics)
        self.test_confusion.update(logits.argmax(-1), batch["labels"])

    def on_test_epoch_end(self):
        self.confusion = self.test_confusion.compute().cpu()  # synced across processes
        self.test_confusion.reset()
        self.log_dict(reference_scores(self.confusion, "test"))

    def _evaluate(self, batch, stage: str, metrics: MetricCollection):
        out = self(batch)
        metrics.update(out.logits.argmax(-1), batch["labels"])
        # Lightning computes, syncs across processes and resets the metric objects each epoch
        self.log_dict(metrics, batch_size=len(batch["labels"]))
        self.log(f"{stage}/loss", out.loss, batch_size=len(batch["labels"]), sync_dist=True)
        return out.logits


def reference_scores(confusion: torch.Tensor, stage: str) -> dict[str, float]:
    """What no learning scores on this split, for a report to show beside the model: the most
    common label predicted for every example (majority) and a uniform guess among the classes
    (chance), in accuracy and macro-F1; and the share of the model's own predictions that went to
    its most predicted class (near 1: it learned one class, not the task)."""
    truth = confusion.sum(1).double()
    total, classes = truth.sum(), len(truth)
    shares = truth / total
    top = float(shares.max())
    return {f"{stage}/majority_accuracy": top,
            f"{stage}/majority_f1_macro": 2 * top / (1 + top) / classes,
            f"{stage}/chance_accuracy": 1 / classes,
            f"{stage}/chance_f1_macro": float((2 * shares / classes / (shares + 1 / classes)).mean()),
            f"{stage}/top_prediction_share": float(confusion.sum(0).max() / total)}
