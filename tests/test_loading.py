"""Batches made in worker processes: the same numbers as in the training process, and `auto`
settings that follow the hardware (see dataeff.data.loading)."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl

from dataeff.data.loading import loader_settings
from tests.conftest import FAST, metric_history, run_app, runs
from tests.test_own_data import write_reviews

# one case per data module, each with what runs inside a worker: packed text; labelled text
# augmented online beside an unlabelled loader; images augmented online beside their questions
LABELLED = ["task=classify", "data=labelled", "data.train.path=train.tsv", "data.max_length=16"]
CASES = {
    "mlm, packed": ("mlm", ["data.packing=true"]),
    "classify, tfidf, uda": ("classify", [*LABELLED, "augment=tfidf", "ssl=uda", "ssl.ratio=2",
                                          "data.unlabelled.path=pool.tsv",
                                          "data.unlabelled.column=sentence"]),
    "fusion, randaugment": ("fusion", ["task=fusion", "augment=image_randaugment"]),
}


@pytest.mark.parametrize(("experiment", "overrides"), CASES.values(), ids=CASES.keys())
def test_two_workers_train_exactly_as_the_training_process_alone(workdir, experiment, overrides):
    write_reviews(workdir / "train.tsv", 60, 0)
    write_reviews(workdir / "pool.tsv", 100, 1)
    history = {}
    for workers in (0, 2):
        assert run_app(*FAST, *overrides, "trainer.limit_test_batches=2", f"data.num_workers={workers}") == 0
        run = runs(workdir, experiment)[-1]
        assert run.info.status == "FINISHED" and run.data.params["data.num_workers"] == str(workers)
        history[workers] = {key: metric_history(workdir, run.info.run_id, key)
                            for key in ("train/loss", "val/loss")}
    assert len(history[0]["train/loss"]) == 3 and len(history[0]["val/loss"]) == 2
    assert history[2] == history[0]  # every logged value, to the last bit


def test_validating_more_often_leaves_training_as_it_was(workdir):
    """Each pass over the validation data starts its loader afresh; its draw of worker seeds must
    not move the random numbers that dropout takes in training."""
    write_reviews(workdir / "train.tsv", 60, 0)
    losses = []
    for interval in (3, 2):
        assert run_app(*FAST, *LABELLED, "trainer.limit_test_batches=2",
                       f"trainer.val_check_interval={interval}") == 0
        run = runs(workdir, "classify")[-1]
        assert len(metric_history(workdir, run.info.run_id, "val/loss")) == 6 // interval
        losses.append(metric_history(workdir, run.info.run_id, "train/loss"))
    assert losses[0] == losses[1]


def test_auto_makes_batches_in_the_training_process_on_cpus():
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False)
    def settings(num_workers, trainer):
        return {k: v for k, v in loader_settings(num_workers, trainer).items() if k != "generator"}

    expected = {"num_workers": 0, "persistent_workers": False, "pin_memory": False}
    assert settings("auto", trainer) == settings("auto", None) == expected
    assert settings(3, trainer) == {"num_workers": 3, "persistent_workers": True, "pin_memory": False}
