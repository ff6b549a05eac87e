"""Hyperparameter search: Hydra's Optuna sweeper, each trial a child run, the best on the parent."""

from __future__ import annotations

import pytest

from tests.conftest import parent_and_children, run_app
from tests.test_launchers import SHORT


def test_an_optuna_search_goes_on_past_a_failed_trial_and_logs_the_best(workdir):
    # a label column the data lacks makes some trials fail inside their run (a setting out of range,
    # such as a negative weight decay, is refused before any run: no trial run to inspect)
    assert run_app("hparams_search=classify_lr", "hydra.sweeper.n_trials=4",
                   "data.label_column=choice(answer,nope)", *SHORT, multirun=True) == 0
    parent, trials = parent_and_children(workdir, "classify_lr_search")
    assert len(trials) == 4 and parent.info.status == "FINISHED"
    failed = [t for t in trials if t.info.status == "FAILED"]
    finished = [t for t in trials if t.info.status == "FINISHED"]
    assert failed and finished
    assert all(t.data.params["data.label_column"] == "nope" for t in failed)
    assert all("'nope'" in t.data.tags["dataeff.error"] for t in failed)
    assert parent.data.tags["dataeff.failed_children"] == str(len(failed))

    best = max(finished, key=lambda t: float(t.data.tags["dataeff.objective"]))
    best_value = float(best.data.tags["dataeff.objective"])
    assert parent.data.metrics["best/val/accuracy"] == pytest.approx(best_value)
    for name in ("task.optimizer.lr", "task.scheduler.warmup_ratio", "task.optimizer.weight_decay"):
        assert float(parent.data.tags[f"best.{name}"]) == pytest.approx(float(best.data.params[name]))
    assert len({t.data.params["task.optimizer.lr"] for t in trials}) == 4  # Optuna proposed each
    assert (workdir / parent.data.tags["dataeff.sweep_dir"] / "optimization_results.yaml").exists()
