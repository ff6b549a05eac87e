"""The installed `dataeff-train` console script, run as a user runs it (one process per call)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from tests.conftest import FAST, run_app, run_cli, runs, store

pytestmark = pytest.mark.slow


@pytest.mark.fresh_store
def test_cli_default_experiment_finishes(workdir):
    # the embedded default with a shorter budget: no data file, no network, no flags needed
    result = run_cli_ok(workdir, *FAST)
    [run] = runs(workdir)
    assert run.info.status == "FINISHED"
    assert run.data.tags["data.name"] == "easyvqa_questions"
    assert "MLflow run" in result.stdout + result.stderr


def test_cli_ddp_sim_fusion_with_bf16_and_image_augmentation(workdir):
    from tests.imagedata import write_xor_task

    write_xor_task(workdir / "xor", n_train=64, n_test=15, size=32)  # odd: 8 + 7 on two processes
    run_cli_ok(workdir, "task=fusion", "data=manifest", "data.train.path=xor/train.csv",
               "data.test.path=xor/test.csv", "vision.config.image_size=32", "fusion=cross_attention",
               "augment=image_easyvqa", "trainer=ddp_sim", "trainer.precision=bf16-mixed", *FAST,
               "trainer.max_steps=4", "trainer.val_check_interval=2", "data.batch_size=8")
    [run] = runs(workdir, "fusion")
    assert run.info.status == "FINISHED" and run.data.params["trainer.devices"] == "2"
    assert {"test/accuracy", "val/accuracy", "train/loss"} <= set(run.data.metrics)
    per_class = pd.read_csv(store(workdir).download_artifacts(run.info.run_id, "test_per_class.csv"))
    assert per_class["support"].sum() == 15  # each example once: none repeated to even the shards
    right = (per_class["recall"].fillna(0) * per_class["support"]).sum()
    assert run.data.metrics["test/accuracy"] == pytest.approx(right / 15)


def test_cli_ddp_nan_on_one_rank_stops_both_with_the_message(workdir):
    # before: the rank with the NaN raised alone and the other waited in its next all-reduce
    result = run_cli("trainer=ddp_sim", *FAST, "trainer.max_steps=8", "trainer.val_check_interval=4",
                     "+callbacks.fault._target_=tests.faults.NaNWeightsOnOneRank", "+callbacks.fault.rank=1",
                     cwd=workdir, timeout=240, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    assert result.returncode == 1, result.stderr[-3000:]
    assert "The training loss became NaN or infinite at step 2" in result.stderr
    assert "Traceback" not in result.stderr
    [run] = runs(workdir)
    assert run.info.status == "FAILED" and "became NaN" in run.data.tags["dataeff.error"]


def test_cli_bad_input_prints_the_fix_not_a_traceback(workdir):
    result = run_cli("data=text", "data.train.path=corpus.txt", cwd=workdir)
    assert result.returncode == 1
    assert "corpus.txt does not exist" in result.stderr
    assert "data.train.path=" in result.stderr and "Traceback" not in result.stderr
    assert [r.info.status for r in runs(workdir)] == ["FAILED"]


def run_cli_ok(workdir, *args):
    result = run_cli(*args, cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_help_prints_what_hydra_prints_without_its_wait(workdir, capsys):
    quick = run_cli("task=classify", "--help", cwd=workdir)
    assert quick.returncode == 0, quick.stderr[-3000:]
    assert run_app("task=classify", "--help") == 0  # Hydra's own --help, in this process
    hydra_text = capsys.readouterr().out
    assert quick.stdout == hydra_text
    tasks = "audit, classify, contrastive, fusion, linear_probe, mim, mlm, setfit, tfidf_lr"
    assert f"task: {tasks}" in quick.stdout
    assert "== Config ==" in quick.stdout
    assert "objective: val/accuracy" in quick.stdout  # the config composed with the override


def test_cli_multirun_of_ddp_jobs_each_trains_on_the_config_rank_zero_resolved(workdir):
    """A sweep of two DDP jobs: one parent run and a child per job, each trained on 2 processes. A
    tuned learning rate, the audit's cleaned file and a chained pretraining run are filled in once,
    by rank 0, into resolved.yaml; rank 1 reads that file instead of resolving again (or running
    the whole sweep again), so both train on one config (each logs its hash), and starts from the
    pretraining run's model that rank 0 fetched into the cache (no store access)."""
    from tests.test_audit import reviews, write_split

    write_split(workdir / "train.tsv", reviews(80, 0))
    steps = ["task=mlm", "data=easyvqa_questions", "model=bert_tiny", "trainer.max_steps=2",
             "trainer.val_check_interval=2", "trainer.limit_val_batches=1",
             "trainer.enable_progress_bar=false"]
    pretrain = "init.pretrain=[" + ",".join(f"'{step}'" for step in steps) + "]"
    result = run_cli("-m", "seed=1,2", "task=classify", "data=labelled", "data.train.path=train.tsv",
                     "init=task_adaptive", pretrain, "tune=lr", "tune.values=[1e-3]",
                     "audit.train_on=cleaned", "trainer=ddp_sim", "subruns=in_process", *FAST,
                     "trainer.max_steps=4", "trainer.val_check_interval=2", cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    written = dict(re.findall(r"Rank 0 resolved the job's config: (\S+) \(config (\w+)\)", log))
    read = dict(re.findall(r"Rank 1 trains on rank 0's (\S+) \(config (\w+)\)", log))
    assert read and all(written[path] == config for path, config in read.items())

    every = runs(workdir, "classify")
    roles = {run.data.tags.get("role"): run for run in every}  # newest of each role
    [parent] = [run for run in every if not {"role", "mlflow.parentRunId"} & set(run.data.tags)]
    jobs = [run for run in every if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id
            and "role" not in run.data.tags]
    assert len(jobs) == 2 and parent.info.status == "FINISHED"
    assert sorted(job.data.tags["seed"] for job in jobs) == ["1", "2"]
    pretraining = roles["pretraining"].info.run_id
    audits = {run.info.run_id for run in every if run.data.tags.get("role") == "audit"}
    for job in jobs:
        resolved_file = Path(job.data.tags["dataeff.output_dir"]) / "resolved.yaml"
        assert str(resolved_file) in read  # rank 1 of this job trained on rank 0's file
        resolved = OmegaConf.load(resolved_file)
        assert resolved.init.source_run_id == job.data.tags["init.source_run_id"] == pretraining
        assert resolved.tags["tune.value"] == job.data.tags["tune.value"] and resolved.tune is None
        assert resolved.data.train.path.endswith("train.jsonl")
        assert resolved.tags.audit_run == job.data.tags["audit_run"] and job.data.tags["audit_run"] in audits
        assert job.info.status == "FINISHED" and job.data.params["trainer.devices"] == "2"
        assert {"val/loss", "train/loss", "val/accuracy"} <= set(job.data.metrics)
    fetched = Path(os.environ["DATAEFF_TEST_CACHE"], "mlflow_runs").glob(f"{pretraining}-*/hf_model")
    assert len(list(fetched)) == 1  # one copy for both jobs and both ranks
