"""Fair tuning: each condition x budget trains with the value that scored best on its validation
data; the trials are trained once per cell, reused by its seeds, and kept out of the results."""

from __future__ import annotations

import json
import os

import pytest

from dataeff.report import cli
from dataeff.stages import subrun
from dataeff.stages.tune import cell_overrides
from tests.conftest import FAST, run_app, runs


def test_a_cell_is_what_its_seeds_share():
    overrides = ["experiment=transfer_small", "init=minilm", "data.fraction=0.05", "data.data_seed=2",
                 "seed=1", "task.optimizer.lr=1e-3", "tune=lr", "tune.values=[1e-4]", "rerun=true"]
    assert cell_overrides(overrides, "task.optimizer.lr") == [
        "experiment=transfer_small", "init=minilm", "data.fraction=0.05"]


@pytest.mark.slow
def test_a_sweep_tunes_each_cell_once_on_validation_and_reports_the_choice(workdir, tmp_path, capsys):
    assert run_app(*FAST, "task=classify", "data.fraction=0.05", "trainer.limit_test_batches=2",
                   "tune=lr", "tune.values=[1e-5,3e-3]", "data.data_seed=0,1", multirun=True) == 0
    study = runs(workdir, "classify")
    trials = [r for r in study if r.data.tags.get("role") == "tuning"]
    children = [r for r in study if "mlflow.parentRunId" in r.data.tags]
    assert len(trials) == 2 and len(children) == 2  # one trial per value, shared by both seeds
    assert {t.data.params["task.optimizer.lr"] for t in trials} == {"1e-05", "0.003"}
    assert {t.data.params["data.data_seed"] for t in trials} == {"0"}  # tuned on one subset
    scores = {float(t.data.params["task.optimizer.lr"]): float(t.data.tags["dataeff.objective"])
              for t in trials}
    best = max(scores, key=scores.get)
    for child in children:
        assert float(child.data.tags["tune.value"]) == best
        assert float(child.data.params["task.optimizer.lr"]) == best  # the logged config says so
        assert {float(k): v for k, v in json.loads(child.data.tags["tune.scores"]).items()} == scores
    assert cli.main(["--experiment", "classify", "--out", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert "## Tuned on validation" in out and "`task.optimizer.lr`" in out
    assert "Runs used: 2 finished" in out  # the trials are not results


def test_a_stage_run_whose_key_reads_as_a_number_is_found_again(workdir, monkeypatch):
    # before: ++tags.tune_key=5174e00960788219 reached MLflow as "inf", so the FINISHED trial was
    # never found and the job failed with "ended without a FINISHED MLflow run"
    monkeypatch.setattr(subrun, "subrun_key", lambda overrides: "5174e00960788219")
    where = subrun.Where("mlm", f"sqlite:///{workdir}/mlflow.db", None, str(workdir),
                         str(workdir / "outputs"), os.environ["DATAEFF_TEST_CACHE"])
    run_id = subrun.stage_run([*FAST, "trainer.max_steps=2"], where, "tuning")
    [run] = runs(workdir, "mlm")
    assert run.info.run_id == run_id and run.data.tags["tune_key"] == "5174e00960788219"
