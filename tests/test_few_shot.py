"""Few-shot conditions: SetFit (pairs, then a logistic-regression head), the linear probe and the
TF-IDF + logistic-regression reference, on the same labelled subsets as fine-tuning."""

from __future__ import annotations

from pathlib import Path

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import dataeff.models.pooled  # noqa: F401  (registers the mean-pooled classifier with transformers)
from dataeff.data.examples import LabelledExamples, PairCollator
from dataeff.data.pairs import SetFitPairs
from dataeff.data.text import TokenizedTexts
from dataeff.errors import UserError
from dataeff.runs.footprint import local_path
from dataeff.tasks.setfit import set_linear
from tests.conftest import FAST, parent_and_children, run_app, runs
from tests.test_own_data import write_reviews

REVIEWS = ["data=labelled", "data.train.path=train.tsv", "data.test.path=test.tsv",
           "data.text_column=sentence", "data.max_length=16", "data.shots=8"]


def examples(labels: list[int]) -> LabelledExamples:
    """One token per example (its own number): a pair's sides say which examples it joins."""
    ids = torch.arange(len(labels), dtype=torch.int32)
    offsets = torch.arange(len(labels) + 1)
    return LabelledExamples(TokenizedTexts(ids, offsets), TokenizedTexts(ids * 0, offsets),
                            torch.tensor(labels))


def test_setfit_pairs_join_same_class_examples_as_similar_and_others_as_not():
    labels = [0, 0, 0, 1, 1, 2]
    pairs = SetFitPairs(examples(labels), iterations=3)
    assert len(pairs) == 2 * 3 * len(labels)  # N same-class and N other-class pairs an example
    similar = [labels[a] == labels[b] for a, b, _ in pairs.pairs]
    assert [target for _, _, target in pairs.pairs] == [float(s) for s in similar]
    assert sum(similar) == len(pairs) // 2
    batch = PairCollator(pad_id=0)([pairs[i] for i in range(4)])
    assert batch["input_ids"].shape == (8, 1) and batch["similarity"].shape == (4,)
    first, second = batch["input_ids"][:4, 0], batch["input_ids"][4:, 0]  # both sides, in pair order
    assert [(int(a), int(b)) for a, b in zip(first, second)] == [pairs.pairs[i][:2] for i in range(4)]


def test_setfit_pairs_refuse_one_class_and_an_unknown_sampling():
    with pytest.raises(UserError, match="one class only"):
        SetFitPairs(examples([1, 1, 1]))
    with pytest.raises(UserError, match="oversampling | undersampling | unique"):
        SetFitPairs(examples([0, 1]), sampling="balanced")


@pytest.mark.parametrize("classes", [[0, 1], [0, 1, 2], [0, 2]])
def test_a_fitted_logistic_regression_becomes_the_nets_linear_layer(classes):
    """Two classes: scikit-learn's one row against 0; a class absent from the labels: never predicted."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 5)).astype(np.float32)
    labels = np.array(classes)[np.arange(60) % len(classes)]
    features[np.arange(60), labels] += 2.0
    head = LogisticRegression().fit(features, labels)
    layer = torch.nn.Linear(5, 3)
    set_linear(layer, head.coef_, head.intercept_, head.classes_)
    with torch.no_grad():
        probabilities = layer(torch.from_numpy(features)).softmax(-1).numpy()
    np.testing.assert_allclose(probabilities[:, head.classes_], head.predict_proba(features), atol=1e-5)
    assert set(probabilities.argmax(-1)) <= set(classes)


def test_setfit_on_eight_labels_a_class_logs_a_classifier_that_loads_and_predicts_as_tested(workdir):
    write_reviews(workdir / "train.tsv", 200, 0)
    write_reviews(workdir / "test.tsv", 60, 1)
    assert run_app("task=setfit", "init=minilm", *REVIEWS, "data.pairs.iterations=4",
                   "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false") == 0
    [run] = runs(workdir, "setfit")
    tags, metrics = run.data.tags, run.data.metrics
    assert run.info.status == "FINISHED"
    assert (tags["task.name"], tags["init.name"], tags["data.train_size"]) == ("setfit", "minilm", "16")
    assert metrics["test/accuracy"] >= 0.9  # the sentiment words decide the label
    assert {"test/f1_macro", "test/majority_accuracy", "val/accuracy", "train/loss"} <= set(metrics)
    # the exported folder: transformers' own classes, no scikit-learn, the same predictions
    folder = local_path(run.info.artifact_uri) / "hf_model"
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    test = pd.read_csv(workdir / "test.tsv", sep="\t")
    with torch.no_grad():
        logits = model(**tokenizer(list(test["sentence"]), padding=True, return_tensors="pt")).logits
    predicted = [model.config.id2label[int(i)] for i in logits.argmax(-1)]
    assert np.mean(np.array(predicted) == test["label"]) == pytest.approx(metrics["test/accuracy"], abs=1e-6)


def test_tfidf_reference_fits_the_same_subset_and_is_a_condition_of_the_report(workdir):
    write_reviews(workdir / "train.tsv", 200, 0)
    write_reviews(workdir / "test.tsv", 60, 1)
    assert run_app("task=classify,tfidf_lr", "study=reviews", *REVIEWS, *FAST,
                   "hydra.callbacks.mlflow_sweep.report={metric: test/accuracy, budget: data.train_size, "
                   "condition: [task.name], baseline: classify}", multirun=True) == 0
    parent, children = parent_and_children(workdir, "reviews")
    by_task = {child.data.tags["task.name"]: child for child in children}
    classify, tfidf = by_task["classify"], by_task["tfidf_lr"]
    assert tfidf.info.status == "FINISHED"
    assert tfidf.data.tags["data.subset_hash"] == classify.data.tags["data.subset_hash"]  # the same 16
    assert (tfidf.data.tags["model.name"], tfidf.data.tags["init.name"]) == ("tfidf_lr", "none")
    assert tfidf.data.metrics["test/accuracy"] >= 0.9 and "test/majority_accuracy" in tfidf.data.metrics
    assert float(tfidf.data.tags["task.classifier.C"]) in (0.1, 1.0, 10.0, 100.0)
    pipeline = mlflow.sklearn.load_model(f"runs:/{tfidf.info.run_id}/model")
    assert list(pipeline.predict(["a superb lovely warm film", "an awful dull grim plot"])) == ["good", "bad"]
    report = (local_path(parent.info.artifact_uri) / "report" / "report.md").read_text()
    assert "| `tfidf_lr` |" in report and "| `classify` |" in report
    assert "(test_per_class.md)" not in report and Path(local_path(tfidf.info.artifact_uri),
                                                          "test_per_class.md").exists()


def test_a_bad_regularisation_grid_or_an_augmentation_is_refused_before_any_run(workdir, capsys):
    write_reviews(workdir / "train.tsv", 40, 0)
    write_reviews(workdir / "test.tsv", 10, 1)
    assert run_app("task=tfidf_lr", *REVIEWS, "task.classifier.C=[0,1]") == 1
    assert "task.classifier.C=[0, 1]: the inverse regularisation strengths" in capsys.readouterr().err
    assert run_app("task=tfidf_lr", *REVIEWS, "augment=tfidf") == 1
    assert "does not augment them; drop augment=tfidf" in capsys.readouterr().err
    assert runs(workdir, "tfidf_lr") == []
