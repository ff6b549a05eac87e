"""The classical reference's recipe (`task=tfidf_lr`): no network, no tokenizer, no Lightning. The
job's config resolved (checks, store, key; no stages), its labelled data drawn under the same
budget as every other job of the study, a TF-IDF + logistic regression fit (C chosen on val), and
the same test metrics, reference scores, per-class tables and tags as a classify run, so that
`dataeff-report` shows it as one more condition. The fitted pipeline is logged as an MLflow model."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow.sklearn
import numpy as np
import torch
from omegaconf import DictConfig
from sklearn.metrics import confusion_matrix, f1_score

from dataeff.building import build, build_data
from dataeff.data.labelled import LabelledTextDataModule
from dataeff.errors import UserError
from dataeff.recipes.ending import job_recipe
from dataeff.report.per_class import per_class_files
from dataeff.runs.job_run import JobRun
from dataeff.runs.tags import OBJECTIVE_TAG
from dataeff.stages.resolve import resolve_rank_zero_job
from dataeff.tasks.classify import reference_scores


@job_recipe
def run(cfg: DictConfig) -> float | None:
    """Fit on the budget's training subset, choose C on val, test: returns the val accuracy."""
    job = resolve_rank_zero_job(cfg)  # one process is plenty, whatever trainer.devices says
    if job is None:
        return None
    if job.done is not None:
        return job.objective
    cfg = job.cfg
    datamodule = build_data(cfg)
    classifier = build(cfg.task.classifier)  # what it refuses (a C of 0) leaves no run
    if not isinstance(datamodule, LabelledTextDataModule):
        raise UserError(f"task={cfg.task.name} reads labelled text: use data=labelled, data=sst2 or "
                        "data=easyvqa_answers.")
    if datamodule.augment is not None:
        raise UserError(f"task={cfg.task.name} fits on the labelled texts as they are and does not augment "
                        f"them; drop augment={cfg.augment.get('name')} (its runs would be tagged with an "
                        "augmentation they never had).")
    with JobRun(cfg, None, job.key) as run:
        tables = datamodule.tables()
        fitted = classifier.fit(tables["train"], tables["val"])
        # what was trained, not the model and init presets this job did not use
        run.set_tags({**datamodule.run_tags(), "model.name": cfg.task.name, "init.name": "none",
                      "task.classifier.C": fitted.C})
        run.log_metrics({"val/accuracy": fitted.val_accuracy})
        if "test" in tables:
            names = [str(name) for name in datamodule.label_names]
            predicted = fitted.predict(tables["test"])
            scores, confusion = test_scores(tables["test"]["label"].astype(str), predicted, names)
            run.log_metrics(scores)
            for name, text in per_class_files(confusion, names).items():
                run.log_text(text, name)
        with tempfile.TemporaryDirectory() as folder:
            mlflow.sklearn.save_model(fitted.pipeline, Path(folder) / "model")
            run.log_artifacts(Path(folder) / "model", "model")
        run.set_tags({OBJECTIVE_TAG: fitted.val_accuracy})
        return fitted.val_accuracy


def test_scores(truth, predicted: np.ndarray, names: list[str]) -> tuple[dict, torch.Tensor]:
    """What a classify run logs of its test: accuracy, macro-F1 and the no-learning references."""
    confusion = torch.as_tensor(confusion_matrix(truth, predicted, labels=names))
    scores = {"test/accuracy": float(np.mean(np.asarray(truth) == predicted)),
              "test/f1_macro": float(f1_score(truth, predicted, average="macro"))}
    return {**scores, **reference_scores(confusion, "test")}, confusion
