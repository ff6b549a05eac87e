"""A sweep says where it stands after each job: job i of N, time elapsed, about how much is left."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf
from pytorch_lightning.callbacks import RichProgressBar

from dataeff.app import CONFIG_DIR
from dataeff.callbacks import BudgetProgressBar, NaNGuard
from dataeff.runs.progress import (
    Progress,
    duration,
    sweep_progress,
    sweep_size,
    time_left,
)
from dataeff.runs.tags import JOB_PLACE_TAG, PROGRESS_TAG, SWEEP_SINCE_TAG, SWEEP_SIZE_TAG
from tests.conftest import FAST, parent_and_children, run_app

BASIC = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def sweep_config(*task: str, params: dict | None = None, **sweeper) -> OmegaConf:
    return OmegaConf.create({"hydra": {"overrides": {"task": list(task)},
                                       "sweeper": {"_target_": BASIC, "params": params, **sweeper}}})


@pytest.mark.parametrize(("task", "params", "size"), [
    (["a=1,2", "b=x,y,z"], None, 6),
    (["a=1,2", "b=x,y,z", "c=5"], {"d": "1,2", "e": "7"}, 12),
    (["seed=range(0,5)"], None, 5),
    (["seed=range(1,10,3)", "lr=choice(0.1,0.01)"], None, 6),
    (["a=1,2"], {"a": "1,2,3,4"}, 2),  # the command line wins over the grid, as in the sweeper
    ([], None, 1),
    (["lr=interval(0,1)"], None, None),  # the basic sweeper cannot run it
])
def test_basic_sweep_size_is_the_product_of_its_sweeps(task, params, size):
    assert sweep_size(sweep_config(*task, params=params)) == size


def test_a_glob_sweep_counts_the_group_options_it_matches():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
        cfg.hydra.overrides.task = ["model=glob(bert_*)", "seed=1,2"]
        assert sweep_size(cfg) == 8  # bert_tiny, mini, small, base


def test_optuna_sweep_size_is_its_trial_count():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["hparams_search=classify_lr", "hydra.sweeper.n_trials=7"],
                      return_hydra_config=True)
    assert sweep_size(cfg) == 7
    assert sweep_size(sweep_config(_target_="some.OtherSweeper")) is None


@pytest.mark.parametrize(("seconds", "text"), [
    (0.2, "0 s"), (42, "42 s"), (59.4, "59 s"), (59.6, "1 min"), (12 * 60 + 20, "12 min"),
    (3600, "1 h"), (3900, "1 h 5 min"), (26 * 3600 + 60, "26 h 1 min")])
def test_durations_are_said_in_the_unit_that_fits(seconds, text):
    assert duration(seconds) == text


def test_time_left_is_this_attempts_rate_times_what_remains():
    assert time_left(600, 3, 6) == 1200
    assert time_left(600, 3, 0) == 0
    assert time_left(600, 0, 6) is None  # nothing trained yet in this attempt: no rate
    assert time_left(600, 3, None) is None  # the sweep's size is unknown


def test_the_line_says_count_failures_elapsed_and_left():
    line = "job 7 of 45 done (1 failed), 12 min elapsed, about 1 h 5 min left"  # 38 jobs at 103 s
    assert Progress(7, 1, 45, 12 * 60, 7).text() == line
    assert Progress(3, 0, 3, 40, 3).text() == "job 3 of 3 done, 40 s elapsed"
    assert Progress(2, 0, None, 40, 2).text() == "job 2 done, 40 s elapsed"


def child(place: str, status: str, end_s: float | None) -> SimpleNamespace:
    return SimpleNamespace(info=SimpleNamespace(run_id=f"{place}{status}", status=status,
                                                start_time=(end_s or 1250) * 1000 - 1,
                                                end_time=None if end_s is None else end_s * 1000),
                           data=SimpleNamespace(tags={JOB_PLACE_TAG: place}))


class FakeStore:
    """A continued sweep: attempt 2 began at t=1000 s; the parent's children as the store has them."""

    def __init__(self, children):
        self.children = children

    def get_run(self, run_id):
        return SimpleNamespace(info=SimpleNamespace(start_time=0, experiment_id="1"),
                               data=SimpleNamespace(tags={SWEEP_SIZE_TAG: "6", SWEEP_SINCE_TAG: "1000000"}))

    def search_runs(self, experiments, filter_string, max_results):
        return self.children


def test_a_continued_sweep_counts_earlier_finished_jobs_but_rates_only_this_attempt():
    store = FakeStore([
        child("a", "FINISHED", 500),  # attempt 1, skipped now: done, took no time of this attempt
        child("b", "FAILED", 600),  # attempt 1 failed ...
        child("b", "FINISHED", 1100),  # ... and trained again now
        child("c", "FAILED", 700),  # failed in attempt 1, not retried yet: not done
        child("d", "FAILED", 1200),  # failed now
        child("e", "RUNNING", None),
    ])
    progress = sweep_progress(store, "parent", now_s=1300)
    assert (progress.done, progress.failed, progress.total, progress.ended_now) == (3, 1, 6, 2)
    assert progress.elapsed_s == 300 and progress.left_s == 450  # 150 s a job, 3 jobs to go
    assert progress.text() == "job 3 of 6 done (1 failed), 5 min elapsed, about 8 min left"


def test_each_job_of_a_sweep_says_where_the_sweep_stands(workdir, capsys):
    assert run_app("seed=1,2,3", *FAST, "trainer.max_steps=2", "trainer.val_check_interval=2",
                   "trainer.limit_val_batches=1", multirun=True) == 0
    result = capsys.readouterr()
    parent, children = parent_and_children(workdir)
    assert len(children) == 3 and parent.data.tags[SWEEP_SIZE_TAG] == "3"
    assert parent.data.tags[PROGRESS_TAG].startswith("job 3 of 3 done, ")
    log = result.out + result.err
    assert "Sweep: job 1 of 3 done, " in log and "left" in log
    assert "Sweep: job 2 of 3 done, " in log


@pytest.mark.parametrize(("max_epochs", "title"),
                         [(-1, "Epoch 299"), (None, "Epoch 299"), (300, "Epoch 299/299")])
def test_the_progress_bar_counts_epochs_only_against_an_epoch_budget(max_epochs, title):
    """Lightning's title is `Epoch {n}/{max_epochs - 1}`: "Epoch 299/-2" under a steps budget."""
    bar = BudgetProgressBar()
    bar._trainer = SimpleNamespace(max_epochs=max_epochs)
    assert bar._get_train_description(299).strip() == title


class CountedReads(dict):
    """Callback metrics that count how often the training loss is asked for."""

    reads = 0

    def get(self, key, default=None):
        self.reads += key == "train/loss"
        return super().get(key, default)


def test_the_bar_reads_the_logged_loss_once_per_logging_step_and_survives_a_skipped_step(monkeypatch):
    monkeypatch.setattr(RichProgressBar, "on_train_batch_end", lambda *args: None)
    monkeypatch.setattr(RichProgressBar, "get_metrics", lambda *args: {})
    bar, metrics = BudgetProgressBar(), CountedReads({"train/loss": torch.tensor(2.5)})
    trainer = SimpleNamespace(log_every_n_steps=10, global_step=0, callback_metrics=metrics)
    # steps 0-19, each over 2 accumulated batches; the second batch of step 3 was skipped ({})
    for step in range(20):
        for batch in range(2):
            trainer.global_step = step
            metrics["train/loss"] = torch.tensor(float(step))
            bar.on_train_batch_end(trainer, None, {} if (step, batch) == (3, 1) else {"loss": 1.0}, {}, 0)
    assert metrics.reads == 2  # on the first batch, then on the first batch of step 10
    assert bar.get_metrics(trainer, None) == {"train/loss": 10.0}  # as logged, not divided by 2


def test_the_nan_guard_passes_over_a_step_the_task_skipped():
    NaNGuard().on_train_batch_end(SimpleNamespace(global_step=1), None, {}, {}, 0)  # no KeyError
