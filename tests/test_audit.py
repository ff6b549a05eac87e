"""The data audit on made-up data: planted duplicates, leakage and flipped labels are found with
their rows; a clean set gives nothing."""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from dataeff.audit.duplicates import (
    every_example,
    exact_duplicates,
    leaked_rows,
    near_duplicates,
    near_leaked_rows,
)
from dataeff.audit.findings import audit
from dataeff.audit.labels import label_issues
from dataeff.audit.run import planted_noise_scores
from dataeff.data.noise import flip_labels
from dataeff.stages.audit_gate import audit_overrides
from tests.conftest import FAST, cache_override, cli_env, run_app, runs, store
from tests.imagedata import write_xor_task

GOOD = ["great", "fine", "lovely", "superb", "warm", "moving", "clever", "bright"]
BAD = ["awful", "dull", "poor", "grim", "cold", "tedious", "clumsy", "flat"]
NOUNS = ["film", "plot", "cast", "script", "score", "ending", "story", "pace", "camera", "dialogue"]


def reviews(rows: int, seed: int, start: int = 0) -> pd.DataFrame:
    """Separable made-up reviews, all different (the row number is in the text)."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(rows):
        label = ("good", "bad")[i % 2]
        words = rng.sample(GOOD if label == "good" else BAD, 3) + rng.sample(NOUNS, 4)
        texts.append(" ".join(rng.sample(words, len(words))) + f" number {start + i}")
        labels.append(label)
    return pd.DataFrame({"text": texts, "label": labels})


def test_planted_exact_and_near_copies_across_splits_are_found_with_their_rows():
    train, test = reviews(200, 0), reviews(50, 1, start=1000)
    test.loc[7, "text"] = "  " + train.loc[3, "text"].upper() + " "  # the same after normalising
    train.loc[150, "text"] = train.loc[20, "text"]  # a copy within train, same label
    near = train.loc[42, "text"].split()
    test.loc[30, "text"] = " ".join(near + ["indeed"])  # one word added
    examples = every_example({"train": train, "test": test})

    exact = exact_duplicates(examples)
    assert leaked_rows(examples, "test", "train") == {7}
    test_copy = exact[(exact["split"] == "test")]
    assert test_copy["row"].tolist() == [7]
    assert set(exact[exact["split"] == "train"]["row"]) == {3, 20, 150}

    pairs = near_duplicates(examples, threshold=0.7)
    assert near_leaked_rows(pairs, "test", "train") == {30}
    [pair] = pairs.itertuples()
    assert (pair.split_a, pair.row_a, pair.split_b, pair.row_b) == ("train", 42, "test", 30)


def test_a_templated_data_set_lists_near_texts_once_with_their_copies():
    # easy-VQA repeats 107 questions 48,248 times: one line per pair of texts (and splits), not
    # millions of row pairs (its audit took over 15 minutes, now seconds)
    texts = ["what is the color of the shape?"] * 300 + ["is there a red circle here"] * 5
    train = pd.DataFrame({"text": texts, "label": ["red"] * 305})
    test = pd.DataFrame({"text": ["what is the colour of the shape?"] * 40, "label": ["red"] * 40})
    examples = every_example({"train": train, "test": test})
    near = near_duplicates(examples, threshold=0.5)
    [line] = near.itertuples()
    assert (line.split_a, line.row_a, line.split_b, line.row_b) == ("train", 0, "test", 0)
    assert line.copies == 300 * 40  # every copy of one text meets every copy of the other
    assert near_leaked_rows(near, "test", "train", examples) == set(range(40))  # every copy leaks
    assert audit({"train": train, "test": test}, near_threshold=0.5).metrics()["audit/test_near_train"] == 40


def test_jobs_that_differ_only_by_an_unused_noise_seed_share_one_audit():
    job = ["data=sst2", "data.label_noise=0.0", "data.noise_seed=2", "seed=2", "audit.train_on=cleaned"]
    clean = audit_overrides(OmegaConf.create({"data": {"label_noise": 0.0}}), job)
    assert "data.noise_seed=2" not in clean and "data=sst2" in clean  # every seed: the same audit
    noisy_job = [job[0], "data.label_noise=0.1", *job[2:]]
    noisy = audit_overrides(OmegaConf.create({"data": {"label_noise": 0.1}}), noisy_job)
    assert "data.noise_seed=2" in noisy and "seed=2" not in noisy  # another draw of noise: another audit


def test_label_noise_flips_a_seeded_share_to_other_classes():
    table = reviews(200, 0)
    noisy, flipped = flip_labels(table, 0.1, seed=4)
    assert len(flipped) == 20 and flipped == flip_labels(table, 0.1, seed=4)[1]
    changed = set(table.index[table["label"] != noisy["label"]])
    assert changed == flipped


def test_the_audit_scores_itself_on_planted_flips():
    train, flipped = flip_labels(reviews(300, 2), 0.05, seed=3)
    findings = audit({"train": train})
    scores = planted_noise_scores(findings, flipped)
    assert scores["audit/label_issue_recall"] >= 0.8 and scores["audit/label_issue_precision"] >= 0.8


def test_a_clean_set_has_no_duplicates_and_no_label_issues():
    train, test = reviews(200, 0), reviews(60, 1, start=1000)
    examples = every_example({"train": train, "test": test})
    assert exact_duplicates(examples).empty and near_duplicates(examples).empty
    assert label_issues(train).empty


def test_planted_flipped_labels_are_found():
    train = reviews(300, 2)
    flipped = random.Random(0).sample(range(300), 15)
    train.loc[flipped, "label"] = train.loc[flipped, "label"].map({"good": "bad", "bad": "good"})
    issues = label_issues(train)
    found = set(issues["row"])
    assert len(found & set(flipped)) >= 13 and len(found - set(flipped)) <= 2  # recall and precision
    worst = issues.iloc[0]
    assert worst["suggested"] != worst["given"] and worst["p_suggested"] > worst["p_given"]


def write_split(path, table: pd.DataFrame):
    table.rename(columns={"text": "sentence"}).to_csv(path, sep="\t", index=False)
    return path


@pytest.mark.slow
def test_dataeff_audit_logs_findings_with_line_numbers_and_writes_clean_files(workdir, capsys):
    train, test = reviews(300, 0), reviews(60, 1, start=1000)
    test.loc[7, "text"] = train.loc[3, "text"]            # leaked: train row 3 is test row 7
    test.loc[30, "text"] = train.loc[42, "text"] + " indeed"  # a near copy of train row 42
    flipped = [10, 11, 12, 13, 14, 15, 16, 17]
    train.loc[flipped, "label"] = train.loc[flipped, "label"].map({"good": "bad", "bad": "good"})
    paths = [f"data.train.path={write_split(workdir / 'train.tsv', train)}",
             f"data.test.path={write_split(workdir / 'test.tsv', test)}"]
    result = subprocess.run([str(Path(sys.executable).with_name("dataeff-audit")), "data=labelled", *paths,
                             "--write-clean", str(workdir / "clean"), cache_override()],
                            cwd=workdir, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1 test examples have an exact copy in train and 1 a near copy" in result.stdout
    [run] = runs(workdir, "audit")
    assert run.info.status == "FINISHED" and run.data.tags["role"] == "audit"
    metrics = run.data.metrics
    assert metrics["audit/test_in_train"] == 1 and metrics["audit/test_near_train"] == 1
    assert metrics["audit/label_issues"] >= 6
    folder = Path(store(workdir).download_artifacts(run.info.run_id, "audit", str(workdir)))
    exact = pd.read_csv(folder / "exact_duplicates.csv")
    assert sorted(zip(exact["split"], exact["row"], exact["line"])) == [("test", 7, 9), ("train", 3, 5)]
    issues = pd.read_csv(folder / "label_issues.csv")
    assert len(set(issues["row"]) & set(flipped)) >= 6 and (issues["line"] == issues["row"] + 2).all()
    assert (folder / "audit.png").stat().st_size > 0 and "# Data audit" in (folder / "audit.md").read_text()

    clean = pd.read_json(workdir / "clean" / "train.jsonl", lines=True)
    assert not {train.loc[3, "text"], train.loc[42, "text"]} & set(clean["sentence"])
    assert len(clean) == 300 - 2 - len(issues)

    capsys.readouterr()
    assert run_app("task=audit", "data=labelled", *paths, "audit.fail_on_leakage=0.01") == 1
    stopped = capsys.readouterr().err
    assert "more than audit.fail_on_leakage=0.01" in stopped and "Traceback" not in stopped
    assert sorted(r.info.status for r in runs(workdir, "audit")) == ["FAILED", "FINISHED"]


def test_a_study_trains_on_the_file_its_audit_cleaned_beside_the_data_as_given(workdir):
    paths = [f"data.train.path={write_split(workdir / 'train.tsv', reviews(200, 0))}",
             f"data.val.path={write_split(workdir / 'val.tsv', reviews(40, 1, start=1000))}"]
    assert run_app("task=classify", "data=labelled", *paths, "data.label_noise=0.1", "data.noise_seed=3",
                   "+tags.noise=${data.label_noise}", "audit.train_on=given,cleaned", *FAST,
                   multirun=True) == 0
    every = runs(workdir, "classify")
    [audit] = [r for r in every if r.data.tags.get("role") == "audit"]
    jobs = {r.data.params["audit.train_on"]: r for r in every if "mlflow.parentRunId" in r.data.tags
            and r.data.tags.get("role") != "audit"}
    assert set(jobs) == {"given", "cleaned"} and all(r.info.status == "FINISHED" for r in every)
    flagged = int(audit.data.metrics["audit/label_issues"])
    assert audit.data.metrics["audit/label_issue_recall"] >= 0.8 and flagged >= 16  # 20 flipped
    given, cleaned = jobs["given"].data.tags, jobs["cleaned"].data.tags
    assert given["data.flipped_labels"] == "20" and "data.flipped_labels" not in cleaned  # not flipped twice
    assert int(cleaned["data.train_size"]) == int(given["data.train_size"]) - flagged
    assert cleaned["audit_run"] == audit.info.run_id and "audit_run" not in given
    assert given["noise"] == cleaned["noise"] == "0.1"  # as asked for, though the cleaned file has no noise


def test_a_copied_and_a_corrupt_image_are_reported(workdir):
    folder = write_xor_task(workdir / "xor", n_train=40, n_test=20)
    shutil.copy(folder / "images" / "train-3.png", folder / "images" / "test-5.png")  # the same picture
    (folder / "images" / "test-9.png").write_bytes(b"not a png at all")
    assert run_app("task=audit", "data=manifest", f"data.train.path={folder / 'train.csv'}",
                   f"data.test.path={folder / 'test.csv'}") == 0
    [run] = runs(workdir, "audit")
    assert run.data.metrics["audit/unreadable_images"] == 1
    assert run.data.metrics["audit/test_image_in_train"] == 1
    folder = Path(store(workdir).download_artifacts(run.info.run_id, "audit", str(workdir)))
    [bad] = pd.read_csv(folder / "unreadable_images.csv").itertuples()
    assert (bad.split, bad.row, bad.line) == ("test", 9, 11) and "test-9.png" in bad.path
    copies = pd.read_csv(folder / "image_copies.csv")
    assert ("train", 3, "test", 5, 0) in set(zip(copies.split_a, copies.row_a, copies.split_b, copies.row_b,
                                                 copies.distance))
    assert "Image sizes" in (folder / "audit.md").read_text()


def test_a_study_that_audits_first_stops_on_leakage_before_anything_trains(workdir, capsys):
    train, test = reviews(100, 0), reviews(20, 1, start=1000)
    test.loc[:4, "text"] = train.loc[:4, "text"].to_numpy()  # a quarter of test is in train
    paths = [f"data.train.path={write_split(workdir / 'train.tsv', train)}",
             f"data.test.path={write_split(workdir / 'test.tsv', test)}"]
    assert run_app("task=classify", "data=labelled", *paths, "audit.before_study=true",
                   "audit.fail_on_leakage=0.01", "seed=1,2", multirun=True) == 1
    err = capsys.readouterr().err
    assert "25.0% of the test examples have an exact or near copy in train (5 exact" in err
    every = runs(workdir, "classify")
    assert [(r.data.tags.get("role"), r.info.status) for r in every if "dataeff.sweep_key" not in r.data.tags
            ] == [("audit", "FAILED")]  # the audit, and no job
