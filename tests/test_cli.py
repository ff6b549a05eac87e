"""The installed `dataeff-train` console script, run as a user runs it (one process per call)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import FAST, runs, store

pytestmark = pytest.mark.slow


def test_cli_default_experiment_finishes(workdir):
    # the embedded default with a shorter budget: no data file, no network, no flags needed
    result = run_cli_ok(workdir, *FAST)
    [run] = runs(workdir)
    assert run.info.status == "FINISHED"
    assert run.data.tags["data.name"] == "easyvqa_questions"
    assert "MLflow run" in result.stdout + result.stderr


def test_cli_ddp_sim_two_processes_one_run(workdir):
    run_cli_ok(workdir, "trainer=ddp_sim", *FAST, "trainer.max_steps=4", "trainer.val_check_interval=2")
    [run] = runs(workdir)
    assert run.info.status == "FINISHED"
    assert run.data.params["trainer.devices"] == "2"
    assert {"val/loss", "train/loss"} <= set(run.data.metrics)


def test_cli_ddp_sim_fusion_with_bf16_and_image_augmentation(workdir):
    from tests.imagedata import write_xor_task

    write_xor_task(workdir / "xor", n_train=64, n_test=16, size=32)
    run_cli_ok(workdir, "task=fusion", "data=manifest", "data.train.path=xor/train.csv",
               "data.test.path=xor/test.csv", "vision.config.image_size=32", "fusion=cross_attention",
               "augment=image_easyvqa", "trainer=ddp_sim", "trainer.precision=bf16-mixed", *FAST,
               "trainer.max_steps=4", "trainer.val_check_interval=2", "data.batch_size=8")
    [run] = runs(workdir, "fusion")
    assert run.info.status == "FINISHED" and run.data.params["trainer.devices"] == "2"
    assert {"test/accuracy", "val/accuracy", "train/loss"} <= set(run.data.metrics)
    per_class = Path(store(workdir).download_artifacts(run.info.run_id, "test_per_class.csv"))
    rows = per_class.read_text().splitlines()[1:]
    assert sum(int(row.split(",")[1]) for row in rows) == 16  # the examples of both ranks


def test_cli_multirun_of_ddp_jobs_is_one_parent_and_a_child_per_job(workdir):
    # each job trains on 2 processes; the second rank runs that job, never the whole sweep again
    run_cli_ok(workdir, "-m", "trainer=ddp_sim", "seed=1,2", *FAST, "trainer.max_steps=4",
               "trainer.val_check_interval=2")
    all_runs = runs(workdir)
    [parent] = [r for r in all_runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in all_runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(all_runs) == 3 and len(children) == 2 and parent.info.status == "FINISHED"
    assert {c.info.status for c in children} == {"FINISHED"}
    assert sorted(c.data.tags["seed"] for c in children) == ["1", "2"]
    assert {c.data.params["trainer.devices"] for c in children} == {"2"}


def test_cli_bad_input_prints_the_fix_not_a_traceback(workdir):
    from tests.conftest import run_cli

    result = run_cli("data=text", "data.train.path=corpus.txt", cwd=workdir)
    assert result.returncode == 1
    assert "corpus.txt does not exist" in result.stderr
    assert "data.train.path=" in result.stderr and "Traceback" not in result.stderr
    assert [r.info.status for r in runs(workdir)] == ["FAILED"]


def run_cli_ok(workdir, *args):
    from tests.conftest import run_cli

    result = run_cli(*args, cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    return result
