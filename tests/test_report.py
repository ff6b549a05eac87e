"""Tests for dataeff.report: the learning-curve math on hand-made numbers, then the whole report
against a real local MLflow store (SQLite + file artifacts in a temporary directory)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from dataeff.errors import UserError
from dataeff.report import (
    aulc,
    default_baseline,
    efficiency,
    efficiency_table,
    labels_needed,
    main,
    summarize,
    write_report,
)
from dataeff.report.mlflow_runs import key_values

# --- math -------------------------------------------------------------------------------------


def test_summarize_gives_mean_sample_std_and_count_per_cell():
    df = pd.DataFrame(
        {
            "init": ["scratch", "scratch", "bert", "bert", "bert"],
            "size": [10, 10, 10, 10, 100],
            "acc": [0.5, 0.7, 0.6, 0.8, 0.9],
        }
    )
    summary = summarize(df, "acc", "init", "size").set_index(["condition", "budget"])

    assert summary.loc[("scratch", 10), "n"] == 2
    assert summary.loc[("scratch", 10), "mean"] == pytest.approx(0.6)
    assert summary.loc[("scratch", 10), "std"] == pytest.approx(math.sqrt(0.02))  # ddof=1
    assert summary.loc[("bert", 10), "mean"] == pytest.approx(0.7)
    assert summary.loc[("bert", 100), "n"] == 1
    assert summary.loc[("bert", 100), "std"] == 0.0  # a single run has no spread


def test_summarize_joins_several_condition_keys_and_skips_missing_metric():
    df = pd.DataFrame(
        {
            "init": ["bert", "bert", "scratch"],
            "augment": ["none", "eda", "none"],
            "size": [10, 10, 10],
            "acc": [0.5, 0.6, None],
        }
    )
    summary = summarize(df, "acc", ["init", "augment"], "size")

    assert list(summary["condition"]) == ["bert/eda", "bert/none"]


def test_labels_needed_interpolates_linearly_in_log10_x():
    # 0.6 is halfway from 0.5 to 0.7, so halfway from log10(10)=1 to log10(1000)=3: 10**2.
    assert labels_needed([10, 1000], [0.5, 0.7], 0.6) == pytest.approx(100.0)
    # The first crossing counts, in any input order: halfway between 10 and 100 is 10**1.5.
    assert labels_needed([1000, 100, 10], [0.6, 0.8, 0.5], 0.65) == pytest.approx(10**1.5)
    # Exactly reaching a measured point needs that point's labels.
    assert labels_needed([10, 100, 1000], [0.5, 0.7, 0.8], 0.7) == pytest.approx(100.0)


def test_baseline_that_never_reaches_the_score_gives_above_max():
    assert labels_needed([10, 100], [0.5, 0.7], 0.9) == math.inf
    result = efficiency([10, 100], [0.5, 0.7], budget=100, score=0.9)
    assert result.kind == "above_max"
    assert str(result) == "> max"


def test_baseline_that_already_matches_at_its_smallest_budget_gives_at_most():
    assert labels_needed([10, 100], [0.5, 0.7], 0.4) == 10.0
    result = efficiency([10, 100], [0.5, 0.7], budget=10, score=0.4)
    assert result.kind == "at_most"
    assert str(result) == "<= 1x"
    assert str(efficiency([10, 100], [0.5, 0.7], budget=100, score=0.4)) == "<= 0.1x"


def test_efficiency_multiplier_is_baseline_labels_over_technique_labels():
    # Baseline 0.55 -> 0.75 over 10 -> 100 labels; 0.70 is 3/4 of the way: 10**1.75 labels.
    result = efficiency([10, 100], [0.55, 0.75], budget=10, score=0.70)
    assert result.kind == "interpolated"
    assert result.multiplier == pytest.approx(10**1.75 / 10)
    assert str(result) == "5.6x"


def test_efficiency_table_compares_every_technique_cell_with_the_baseline():
    summary = pd.DataFrame(
        {
            "condition": ["scratch", "scratch", "bert", "bert"],
            "budget": [10.0, 100.0, 10.0, 100.0],
            "n": [2, 2, 2, 2],
            "mean": [0.55, 0.75, 0.70, 0.90],
            "std": [0.0] * 4,
        }
    )
    table = efficiency_table(summary, "scratch")

    assert list(table["condition"]) == ["bert", "bert"]
    assert list(table["text"]) == ["5.6x", "> max"]


def test_aulc_of_a_flat_curve_is_its_value_and_of_a_ramp_its_log_average():
    assert aulc([10, 100, 1000], [0.8, 0.8, 0.8]) == pytest.approx(0.8)
    # Trapezoids over log10 x = 1, 2, 3: (0.6 + 0.75) / 2.
    assert aulc([1000, 10, 100], [0.8, 0.5, 0.7]) == pytest.approx(0.675)
    assert aulc([100], [0.7]) == pytest.approx(0.7)


def test_default_baseline_prefers_conventional_names():
    assert default_baseline(["bert", "none", "scratch"]) == "scratch"
    assert default_baseline(["bert", "text"]) == "text"
    assert default_baseline(["bert/eda", "scratch/none"]) == "scratch/none"
    assert default_baseline(["roberta", "bert"]) == "bert"


def test_a_tag_wins_over_a_param_of_the_same_key():
    runs = pd.DataFrame({"tags.seed": ["1", None], "params.seed": ["2", "3"]})
    assert list(key_values(runs, "seed")) == ["1", "3"]
    assert key_values(runs, "absent").isna().all()


# --- against a real MLflow store --------------------------------------------------------------

EXPERIMENT = "sst2-budget"
# (init, train_size, seed, test/accuracy) of the newest study's finished children.
CHILDREN = [
    ("scratch", 10, 0, 0.50),
    ("scratch", 10, 1, 0.60),
    ("scratch", 100, 0, 0.70),
    ("scratch", 100, 1, 0.80),
    ("pretrained", 10, 0, 0.70),
    ("pretrained", 10, 1, 0.70),
    ("pretrained", 100, 0, 0.85),
    ("pretrained", 100, 1, 0.95),
]


def _child(client, experiment_id, parent_id, start, init, size, seed, accuracy, status):
    tags = {"mlflow.parentRunId": parent_id, "init.name": init, "data.train_size": str(size)}
    run_id = client.create_run(experiment_id, start_time=start, tags=tags).info.run_id
    metrics = [] if accuracy is None else [Metric("test/accuracy", accuracy, start, 0)]
    metrics.append(Metric("val/accuracy", 0.5, start, 0))
    params = [Param("seed", str(seed)), Param("data.fraction", str(size / 1000))]
    client.log_batch(run_id, metrics=metrics, params=params, tags=[RunTag("seed", str(seed))])
    client.set_terminated(run_id, status)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Three studies: one whose only child was KILLED, an older one with one child, and the
    newest: 8 finished children (CHILDREN), one FAILED and one finished without the metric.
    Creating the SQLite store takes seconds, so it is shared by the module."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(
        EXPERIMENT, artifact_location=(root / "artifacts").as_uri()
    )
    client.create_experiment("other-study", artifact_location=(root / "other").as_uri())

    killed_parent = client.create_run(experiment_id, start_time=500).info.run_id
    _child(client, experiment_id, killed_parent, 501, "scratch", 10, 0, 0.5, "KILLED")
    client.set_terminated(killed_parent, "KILLED")

    old_parent = client.create_run(experiment_id, start_time=1_000).info.run_id
    _child(client, experiment_id, old_parent, 1_001, "scratch", 1000, 0, 0.9, "FINISHED")
    client.set_terminated(old_parent, "FINISHED")

    parent = client.create_run(experiment_id, start_time=2_000).info.run_id
    for offset, (init, size, seed, accuracy) in enumerate(CHILDREN, start=1):
        _child(
            client, experiment_id, parent, 2_000 + offset, init, size, seed, accuracy, "FINISHED"
        )
    _child(client, experiment_id, parent, 3_000, "scratch", 10, 2, 0.0, "FAILED")
    _child(client, experiment_id, parent, 3_001, "pretrained", 10, 2, None, "FINISHED")
    client.set_terminated(parent, "FINISHED")
    return {
        "uri": uri,
        "client": client,
        "parent": parent,
        "old_parent": old_parent,
        "killed_parent": killed_parent,
    }


def test_write_report_writes_files_with_right_numbers_and_logs_them(store, tmp_path):
    report = write_report(EXPERIMENT, store["parent"], tracking_uri=store["uri"], out_dir=tmp_path)

    assert report == tmp_path / "report.md"
    assert (tmp_path / "learning_curve.png").read_bytes().startswith(b"\x89PNG")
    summary = pd.read_csv(tmp_path / "summary.csv").set_index(["condition", "budget"])
    assert summary["n"].to_dict() == {
        ("pretrained", 10): 2,
        ("pretrained", 100): 2,
        ("scratch", 10): 2,  # the FAILED run is not counted
        ("scratch", 100): 2,
    }
    assert summary.loc[("scratch", 10), "mean"] == pytest.approx(0.55)
    assert summary.loc[("scratch", 10), "std"] == pytest.approx(math.sqrt(0.005))
    assert summary.loc[("pretrained", 100), "mean"] == pytest.approx(0.90)

    markdown = report.read_text()
    assert "| `scratch` | 0.550 ± 0.071 (n=2) | 0.750 ± 0.071 (n=2) |" in markdown
    assert "| `pretrained` | 0.700 ± 0.000 (n=2) | 0.900 ± 0.071 (n=2) |" in markdown
    assert "| `pretrained` | 5.6x (56) | > max |" in markdown  # 10**1.75 = 56 labels
    assert "| `scratch` | 0.650 | 10–100 | 2 |" in markdown  # AULC
    assert "| `pretrained` | 0.800 | 10–100 | 2 |" in markdown
    assert "Ignored 1 run with status FAILED." in markdown
    assert "Left out 1 run with no metric 'test/accuracy'." in markdown

    logged = store["client"].list_artifacts(store["parent"], "report")
    assert sorted(info.path for info in logged) == [
        "report/learning_curve.png",
        "report/report.md",
        "report/summary.csv",
    ]


def test_main_defaults_to_the_newest_parent_and_prints_markdown(
    store, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store["uri"])

    assert main(["--experiment", EXPERIMENT, "--baseline", "pretrained"]) == 0

    out = capsys.readouterr().out
    assert f"parent run `{store['parent']}`" in out
    assert "| `scratch` | <= 1x | 0.18x (18) |" in out  # pretrained is the baseline here
    assert (tmp_path / "reports" / EXPERIMENT / store["parent"] / "summary.csv").exists()


def test_main_writes_beside_the_jobs_store_under_dataeff_root(store, tmp_path, monkeypatch, capsys):
    # before: ./reports wherever dataeff-report was started, while the jobs wrote under DATAEFF_ROOT
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store["uri"])
    monkeypatch.setenv("DATAEFF_ROOT", str(tmp_path / "root"))
    assert main(["--experiment", EXPERIMENT]) == 0
    assert (tmp_path / "root" / "reports" / EXPERIMENT / store["parent"] / "report.md").exists()
    assert not (tmp_path / "reports").exists()


def test_main_with_other_metric_and_several_condition_keys(store, tmp_path, capsys):
    argv = ["--experiment", EXPERIMENT, "--parent", store["old_parent"], "--out", str(tmp_path)]
    argv += ["--tracking-uri", store["uri"], "--metric", "val/accuracy"]
    argv += ["--budget", "data.fraction", "--condition", "init.name", "seed"]

    assert main(argv) == 0

    assert "| condition | 1 |" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "summary.csv")["condition"].tolist() == ["scratch/0"]


def test_a_study_run_as_several_sweeps_is_reported_as_one(store, tmp_path, capsys):
    argv = ["--experiment", EXPERIMENT, "--parent", store["parent"], store["old_parent"],
            "--tracking-uri", store["uri"], "--out", str(tmp_path)]

    assert main(argv) == 0

    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary["n"].sum() == 9 and 1000 in summary["budget"].tolist()
    assert f"parent runs `{store['parent']}, {store['old_parent']}`" in capsys.readouterr().out
    for parent in (store["parent"], store["old_parent"]):
        logged = {a.path for a in store["client"].list_artifacts(parent, "report")}
        assert "report/summary.csv" in logged


def test_without_parent_the_whole_experiment_but_no_parent_run_is_used(store, tmp_path):
    report = write_report(EXPERIMENT, None, tracking_uri=store["uri"], out_dir=tmp_path)

    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary["n"].sum() == 9  # 8 + the older study's child; parents have no metric
    assert "Runs used: 9 finished" in report.read_text()


def test_unknown_experiment_names_the_existing_ones(store, capsys):
    assert main(["--experiment", "nope", "--tracking-uri", store["uri"]]) == 1

    error = capsys.readouterr().err
    assert "No experiment named 'nope'" in error
    assert "other-study" in error and EXPERIMENT in error


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"metric": "test/f1_macro"}, "Metrics there: test/accuracy, val/accuracy"),
        ({"budget": "data.size"}, "Tags and params there: data.fraction, data.train_size"),
        ({"condition": ["init.name", "modality"]}, "Choose one with --condition"),
        ({"baseline": "bert"}, "not among the conditions: pretrained, scratch"),
    ],
)
def test_unusable_options_raise_user_errors_naming_what_exists(store, tmp_path, options, expected):
    with pytest.raises(UserError, match=expected):
        write_report(
            EXPERIMENT, store["parent"], tracking_uri=store["uri"], out_dir=tmp_path, **options
        )


def test_study_without_finished_runs_and_missing_store_are_user_errors(store, tmp_path):
    with pytest.raises(UserError, match=r"No FINISHED runs .* \(found: 1 KILLED\)"):
        write_report(
            EXPERIMENT, store["killed_parent"], tracking_uri=store["uri"], out_dir=tmp_path
        )
    with pytest.raises(UserError, match="has no child runs"):
        write_report(EXPERIMENT, "0" * 32, tracking_uri=store["uri"], out_dir=tmp_path)
    with pytest.raises(UserError, match="No MLflow store"):
        write_report(EXPERIMENT, None, tracking_uri=f"sqlite:///{tmp_path}/absent.db")


def test_per_class_table_from_a_confusion_matrix():
    from dataeff.report.per_class import per_class, per_class_markdown

    confusion = torch.tensor([[8, 2, 0], [1, 9, 0], [0, 0, 0]])  # [true, predicted]; no "c" at all
    table = per_class(confusion, ["a", "b", "c"])
    assert table.support.tolist() == [10, 10, 0]
    assert table.recall.tolist()[:2] == [0.8, 0.9] and pd.isna(table.recall[2])
    assert table.precision.tolist()[:2] == pytest.approx([8 / 9, 9 / 11])
    assert (table.confused_with.tolist(), table.confused_count.tolist()) == (["b", "a", ""], [2, 1, 0])
    assert "| a | 10 | 80.0 | 88.9 | b (2) |" in per_class_markdown(table)
