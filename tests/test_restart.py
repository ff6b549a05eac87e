"""Restartable studies: the same sweep run again continues its parent and trains only what is not
FINISHED yet; rerun=true trains everything again as a separate sweep."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from dataeff.report.mlflow_runs import latest_per_job
from tests.conftest import FAST, run_app, run_cli, runs

SWEEP = [*FAST, "trainer.max_steps=3", "seed=1,2"]


def family(workdir):
    every = runs(workdir)
    parents = [r for r in every if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in every if "mlflow.parentRunId" in r.data.tags]
    return parents, children


def test_a_finished_sweep_run_again_trains_nothing_new(workdir, capsys):
    assert run_app(*SWEEP, multirun=True) == 0
    [parent], first = family(workdir)
    capsys.readouterr()
    assert run_app(*SWEEP, multirun=True) == 0
    [again], children = family(workdir)
    assert again.info.run_id == parent.info.run_id and again.info.status == "FINISHED"
    assert again.data.tags["dataeff.sweep_attempts"] == "2"
    assert {c.info.run_id for c in children} == {c.info.run_id for c in first}  # no new run
    assert capsys.readouterr().out.count("Skipped: this sweep already FINISHED this job") == 2

    assert run_app(*SWEEP, "rerun=true", multirun=True) == 0  # forced: a separate sweep, all trained
    parents, children = family(workdir)
    assert len(parents) == 2 and len(children) == 4
    assert {r.info.status for r in parents + children} == {"FINISHED"}


@pytest.mark.slow
def test_a_half_finished_sweep_runs_only_the_rest(workdir):
    """Job 1 finishes; job 2 fails (its init checkpoint is missing). Once the checkpoint is there,
    the same command trains job 2 alone, and the parent ends FINISHED."""
    source = workdir / "pretrained.ckpt"
    sweep = [*FAST, "trainer.max_steps=3", "init=scratch,checkpoint", f"init.source={source}",
             "keep_checkpoints=last"]
    failed = run_cli("-m", *sweep, cwd=workdir)
    assert failed.returncode == 1  # the parent is closed as its process ends
    assert "pretrained.ckpt" in failed.stderr and "Traceback" not in failed.stderr  # the job's reason, alone
    [parent], children = family(workdir)
    assert parent.info.status == "FAILED"
    assert sorted(c.info.status for c in children) == ["FAILED", "FINISHED"]
    [done] = [c for c in children if c.info.status == "FINISHED"]
    shutil.copy(workdir / done.data.tags["dataeff.output_dir"] / "checkpoints" / "last.ckpt", source)

    assert run_app(*sweep, multirun=True) == 0
    [again], children = family(workdir)
    assert again.info.run_id == parent.info.run_id and again.info.status == "FINISHED"
    assert len(children) == 3  # the failed attempt stays, as history
    retried = [c for c in children if c.data.tags["init.name"] != "scratch"]
    assert sorted(c.info.status for c in retried) == ["FAILED", "FINISHED"]
    assert [c.info.run_id for c in children if c.data.tags["init.name"] == "scratch"] == [done.info.run_id]


def test_the_report_counts_a_retried_job_once():
    study = pd.DataFrame({"run_id": ["a", "b", "c", "d"], "start_time": [1, 2, 3, 4],
                          "parent_run_id": ["p", "p", "p", None],
                          "tags.dataeff.job_place": ["j1", "j1", "j2", None]})
    assert list(latest_per_job(study)["run_id"]) == ["b", "c", "d"]
