"""Fine-tuning from a pretraining run: weights copied exactly, head fresh, runs linked in MLflow."""

from __future__ import annotations

import pytest
import torch

from dataeff.errors import UserError
from dataeff.models.bert import build_classifier
from dataeff.models.init import from_mlflow_run
from tests.conftest import FAST, run_app, runs


@pytest.fixture
def mlm_run(workdir):
    assert run_app(*FAST) == 0
    [run] = runs(workdir, "mlm")
    return run


def test_encoder_weights_are_copied_exactly_and_the_head_is_fresh(workdir, mlm_run):
    uri = f"sqlite:///{workdir}/mlflow.db"
    pretrained = from_mlflow_run(mlm_run.info.run_id, uri)
    assert pretrained.run_id == mlm_run.info.run_id
    model, report = build_classifier(None, pretrained.tokenizer, num_labels=3, pretrained=pretrained)
    weights = model.state_dict()
    encoder = [k for k in pretrained.state_dict if k.startswith("bert.")]
    assert encoder and set(encoder) <= set(report["loaded"])
    for key in encoder:
        assert torch.equal(weights[key], pretrained.state_dict[key]), key
    assert "classifier.weight" in report["missing"] and "classifier.weight" not in pretrained.state_dict
    assert weights["classifier.weight"].shape == (3, pretrained.config.hidden_size)


def test_finetune_from_mlflow_run_logs_budget_init_and_test_metrics(workdir, mlm_run):
    source = mlm_run.info.run_id
    assert run_app(*FAST, "task=classify", "data=easyvqa_answers", "data.fraction=0.02",
                   "init=mlflow_run", f"init.source={source}", "trainer.limit_test_batches=4") == 0
    [run] = runs(workdir, "classify")
    tags, metrics = run.data.tags, run.data.metrics
    assert run.info.status == "FINISHED"
    assert tags["init.source_run_id"] == source and tags["init.name"] == "mlm"
    assert 680 < int(tags["data.train_size"]) < 710  # 2% of the 34,717 questions left after val
    assert tags["data.num_classes"] == "13" and len(tags["data.subset_hash"]) == 12
    assert {"test/accuracy", "test/f1_macro", "val/accuracy"} <= set(metrics)
    assert 0.0 <= metrics["test/accuracy"] <= 1.0


def test_unknown_run_id_is_a_clear_error(workdir):
    with pytest.raises(UserError, match="does not exist"):
        from_mlflow_run("0" * 32, f"sqlite:///{workdir}/mlflow.db")
