"""Fine-tuning from a pretraining run: weights copied exactly, head fresh, runs linked in MLflow."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from dataeff.errors import UserError
from dataeff.models.bert import build_classifier
from dataeff.models.init import from_huggingface
from dataeff.models.shape import DataShape
from dataeff.runs.artifacts import fetch_run_model
from tests.conftest import FAST, run_app, runs


def from_mlflow_run(run_id: str, tracking_uri: str, cache_dir: str):
    """What a job's fetch stage and then its model load: the run's hf_model/ folder."""
    return from_huggingface(str(fetch_run_model(run_id, tracking_uri, cache_dir)), run_id=run_id)


@pytest.fixture
def mlm_run(workdir):
    assert run_app(*FAST) == 0
    [run] = runs(workdir, "mlm")
    return run


def test_encoder_weights_are_copied_exactly_and_the_head_is_fresh(workdir, mlm_run):
    uri = f"sqlite:///{workdir}/mlflow.db"
    pretrained = from_mlflow_run(mlm_run.info.run_id, uri, str(workdir / "cache"))
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
        from_mlflow_run("0" * 32, f"sqlite:///{workdir}/mlflow.db", str(workdir / "cache"))


def test_other_ranks_start_from_the_fetched_copy_without_the_store(workdir, mlm_run):
    """What rank 0 hands the ranks Lightning starts (its resolved config): the same weights, loaded
    from the cache, even with the store out of reach."""
    from hydra import compose, initialize_config_dir

    from dataeff.app import CONFIG_DIR
    from dataeff.models.init import load_init
    from dataeff.stages.fetch import fetch_sources
    from dataeff.stages.resolved import values

    job = ["task=classify", "data=easyvqa_answers", "init=mlflow_run", f"init.source={mlm_run.info.run_id}",
           f"paths.cache_dir={workdir / 'cache'}", f"logger.mlflow.tracking_uri=sqlite:///{workdir}/mlflow.db"]
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        rank_zero = compose("train", overrides=job)
    fetch_sources(rank_zero)
    other_rank = OmegaConf.create(values(rank_zero))  # what resolved.yaml holds
    other_rank.logger.mlflow.tracking_uri = "sqlite:////nonexistent/mlflow.db"
    assert (other_rank.init.kind, other_rank.init.source_run_id) == ("huggingface", mlm_run.info.run_id)
    fetch_sources(other_rank)  # nothing left to fetch: it never opens the store
    pretrained = load_init(other_rank)
    assert pretrained.run_id == mlm_run.info.run_id
    reference = from_mlflow_run(mlm_run.info.run_id, f"sqlite:///{workdir}/mlflow.db", str(workdir / "cache"))
    assert all(torch.equal(pretrained.state_dict[k], v) for k, v in reference.state_dict.items())
    assert [p.name for p in (workdir / "cache" / "mlflow_runs").iterdir() if p.is_dir()] == [
        f"{mlm_run.info.run_id}-{mlm_run.info.end_time}"]  # one copy, no partial downloads left


def test_the_model_tag_names_the_architecture_that_was_trained(workdir):
    # init=minilm under the default bert_tiny preset trains MiniLM (6 layers, 384 wide): before,
    # its run said model.name=bert_tiny and grouped with the tiny models in the MLflow UI
    assert run_app("task=classify", "init=minilm", "data.fraction=0.02", "data.batch_size=8",
                   "trainer.max_steps=1", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
                   "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false") == 0
    [run] = runs(workdir, "classify")
    assert run.data.tags["model.name"] == "minilm-L6-H384"
    assert run.data.params["model.name"] == "bert_tiny"  # the config as given stays on record


def test_a_probe_after_mlm_freezes_the_pretrained_encoder_and_no_fresh_layer(workdir, mlm_run):
    # before: freeze_encoder froze all of net.bert, the pooler too, which an MLM run never had, so
    # the probe trained its head over a frozen random projection

    from dataeff.models.bert import classifier_net

    uri = f"sqlite:///{workdir}/mlflow.db"
    pretrained = from_mlflow_run(mlm_run.info.run_id, uri, str(workdir / "cache"))
    cls_pooling = OmegaConf.create({"pooling": "cls"})  # the pooler: fresh after MLM, so it must train
    net, reports = classifier_net(cls_pooling, pretrained.tokenizer, DataShape("t", ("a", "b")),
                                  pretrained=pretrained, freeze_encoder=True)
    report = reports["text"]
    frozen = {name for name, p in net.named_parameters() if not p.requires_grad}
    assert frozen == set(report["loaded"]) and all(name.startswith("bert.") for name in frozen)
    trainable = {name for name, p in net.named_parameters() if p.requires_grad}
    assert {"bert.pooler.dense.weight", "classifier.weight"} <= trainable


def test_a_probe_of_nothing_pretrained_is_refused(workdir, capsys):
    assert run_app(*FAST, "task=classify", "task.freeze_encoder=true") == 1
    assert "loads no pretrained weights" in capsys.readouterr().err
