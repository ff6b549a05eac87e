"""A transfer study on a user's own TSV with the documented command line only (issue #16)."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from dataeff.runs.footprint import local_path, size_on_disk
from dataeff.runs.tags import DISK_TAG
from tests.conftest import FAST, cli_env, run_app, run_cli, runs, store

WORDS = {"good": ["great", "fine", "lovely", "superb", "warm"],
         "bad": ["awful", "dull", "poor", "grim", "cold"]}
FILLER = ["the", "a", "film", "plot", "cast", "was"]


def write_reviews(path: Path, rows: int, seed: int) -> Path:
    rng = random.Random(seed)
    lines = ["sentence\tlabel"]
    for index in range(rows):
        label = ("good", "bad")[index % 2]
        words = rng.sample(WORDS[label], 3) + rng.sample(FILLER, 3)
        lines.append(f"{' '.join(rng.sample(words, len(words)))}\t{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_datamodule_of_your_own_trains_when_it_subclasses_the_tasks(workdir):
    write_reviews(workdir / "train.tsv", 60, 0)
    own = ["task=classify", "data=labelled", "data.train.path=train.tsv", "data.text_column=sentence",
           "data._target_=tests.own_modules.ReviewData", "+data.origin=shop", "data.max_length=16", *FAST]
    assert run_app(*own) == 0
    (run,) = runs(workdir, "classify")
    assert run.info.status == "FINISHED"
    assert run.data.tags["data.origin"] == "shop"  # its own tag, beside dataeff's budget tags
    assert run.data.tags["data.train_size"] == "54"  # 60 rows less the validation split


@pytest.mark.slow
def test_a_transfer_study_on_your_tsv_from_the_command_line(workdir):
    tmp_path = workdir
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    elsewhere.mkdir()
    train, test = write_reviews(tmp_path / "train.tsv", 400, 0), write_reviews(tmp_path / "test.tsv", 40, 1)
    study = run_cli("-m", "task=classify", "data=labelled", f"data.train.path={train}",
                    f"data.test.path={test}", "data.fraction=0.1", "init=scratch,minilm",
                    "+lr_by_init={scratch: 5e-4, minilm: 5e-5}", "data.max_length=16", "data.batch_size=8",
                    "trainer.max_steps=2", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
                    "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
                    cwd=tmp_path, timeout=600, DATAEFF_ROOT=str(root))
    assert study.returncode == 0, study.stderr[-3000:]
    client = store(root)
    children = [r for r in client.search_runs([client.get_experiment_by_name("classify").experiment_id])
                if "mlflow.parentRunId" in r.data.tags]
    by_init = {r.data.tags["init.name"]: r for r in children}
    for init, rate in {"scratch": "0.0005", "minilm": "5e-05"}.items():
        params, tags = by_init[init].data.params, by_init[init].data.tags
        assert params["task.optimizer.lr"] == params["init.lr"] == rate  # one rate on record
        # 10% of the 360 training rows after validation; validation matched to it, and counted
        assert tags["data.train_size"] == tags["data.val_size"] == "36"
        assert tags["data.labels"] == "72"
    assert by_init["minilm"].data.tags["model.name"] == "minilm-L6-H384"
    exported = Path(by_init["minilm"].data.tags["dataeff.output_dir"]) / "hf_model"
    weights = size_on_disk(local_path(by_init["minilm"].info.artifact_uri) / "hf_model")
    assert weights > 80e6 and float(by_init["minilm"].data.tags[DISK_TAG]) < 2 * weights / 1e6
    assert (exported / "config.json").exists()

    report = subprocess.run([str(Path(sys.executable).with_name("dataeff-report")), "--experiment",
                             "classify", "--condition", "init.name", "--baseline", "scratch"],
                            cwd=elsewhere, env=cli_env(DATAEFF_ROOT=str(root)), capture_output=True,
                            text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-3000:]
    assert "| `minilm` |" in report.stdout and "on 36 of them (data.val_size=matched)" in report.stdout
    assert list((root / "reports" / "classify").glob("*/report.md"))
