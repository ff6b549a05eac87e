"""Tests for dataeff.report: the learning-curve math on hand-made numbers, then the whole report
against a real local MLflow store (SQLite + file artifacts in a temporary directory)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from scipy import stats

from dataeff.errors import UserError
from dataeff.report.cli import main, write_report
from dataeff.report.curves import (
    aulc,
    aulc_between,
    default_baseline,
    efficiency,
    efficiency_table,
    labels_needed,
    shared_range,
    summarize,
)
from dataeff.report.mlflow_runs import key_values
from dataeff.report.render import ReportContext, report_markdown
from dataeff.report.uncertainty import (
    analyse,
    bootstrap_means,
    paired_difference,
    paired_table,
    percentile_interval,
    t_interval,
    with_intervals,
)

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


def test_aulc_between_reads_the_curve_at_the_ends_of_a_shared_range():
    # log10 x = 1, 2, 3 with y = 0.5, 0.7, 0.8; over 10-100 only: (0.5 + 0.7) / 2.
    assert aulc_between([10, 100, 1000], [0.5, 0.7, 0.8], 10, 100) == pytest.approx(0.6)
    # 10**1.5 is halfway up the first segment (0.6): trapezoids 0.5 * (0.65 + 0.75) / 2 over 1.5.
    assert aulc_between([10, 100, 1000], [0.5, 0.7, 0.8], 10**1.5, 1000) == pytest.approx(
        (0.5 * (0.6 + 0.7) / 2 + (0.7 + 0.8) / 2) / 1.5
    )
    assert aulc_between([10, 100], [0.5, 0.7], 10**1.5, 10**1.5) == pytest.approx(0.6)
    assert aulc_between([10, 1000], [0.5, 0.8], 10, 1000) == aulc([10, 1000], [0.5, 0.8])
    with pytest.raises(ValueError, match="not within"):
        aulc_between([10, 100], [0.5, 0.7], 10, 1000)  # no extrapolation


def test_shared_range_is_the_intersection_of_the_conditions_budget_ranges():
    summary = pd.DataFrame(
        {"condition": ["scratch"] * 3 + ["bert"] * 2, "budget": [10.0, 100.0, 1000.0, 30.0, 300.0]}
    )
    assert shared_range(summary) == (30.0, 300.0)
    disjoint = pd.DataFrame({"condition": ["a", "a", "b"], "budget": [10.0, 20.0, 30.0]})
    assert shared_range(disjoint) is None


# --- uncertainty ------------------------------------------------------------------------------

T_975_2 = 4.302652729911275  # Student's t, 97.5th percentile, 2 degrees of freedom


def test_t_interval_by_hand():
    low, high = t_interval([0.7, 0.8, 0.9])  # mean 0.8, sample std 0.1, n 3
    half = T_975_2 * 0.1 / math.sqrt(3)
    assert half == pytest.approx(0.2484137)
    assert (low, high) == pytest.approx((0.8 - half, 0.8 + half))
    assert all(math.isnan(bound) for bound in t_interval([0.7]))  # one run: no interval


def test_summary_intervals_are_nan_for_a_single_run():
    df = pd.DataFrame({"init": ["a", "a", "a", "b"], "size": [10] * 4, "acc": [0.7, 0.8, 0.9, 0.5]})
    summary = with_intervals(summarize(df, "acc", "init", "size")).set_index("condition")
    assert summary.loc["a", "ci_low"] == pytest.approx(0.8 - T_975_2 * 0.1 / math.sqrt(3))
    assert math.isnan(summary.loc["b", "ci_low"]) and math.isnan(summary.loc["b", "ci_high"])


def test_paired_difference_uses_only_common_keys_and_matches_scipy():
    technique = pd.Series([0.80, 0.90, 0.85], index=["0", "1", "2"])
    baseline = pd.Series([0.70, 0.75, 0.80, 0.10], index=["0", "1", "2", "3"])  # "3" has no partner
    result = paired_difference(technique, baseline)

    # Differences 0.10, 0.15, 0.05: mean 0.1, sample std 0.05, t = 0.1 / (0.05 / sqrt 3).
    assert result.pairs == 3
    assert result.diff == pytest.approx(0.1)
    half = T_975_2 * 0.05 / math.sqrt(3)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.1 - half, 0.1 + half))
    assert result.p == pytest.approx(2 * stats.t.sf(0.1 / (0.05 / math.sqrt(3)), 2))
    assert result.p == pytest.approx(stats.ttest_rel([0.8, 0.9, 0.85], [0.7, 0.75, 0.8]).pvalue)
    single = paired_difference(technique, pd.Series([0.5], index=["1"]))
    assert single.pairs == 1 and single.diff == pytest.approx(0.4) and math.isnan(single.p)
    # 0.95 - 0.8 and 0.85 - 0.7 differ only by rounding: no spread, no test, a zero-width interval.
    constant = paired_difference(pd.Series([0.95, 0.85]), pd.Series([0.8, 0.7]))
    assert (constant.ci_low, constant.ci_high) == pytest.approx((0.15, 0.15)) and math.isnan(constant.p)


def _study(pairs=("0", "1", "2")) -> pd.DataFrame:
    """scratch at 10/100/1000 labels and minilm at 10/100, three runs each, paired by subset."""
    cells = {
        ("scratch", 10): [0.50, 0.55, 0.60],
        ("scratch", 100): [0.70, 0.75, 0.80],
        ("scratch", 1000): [0.85, 0.90, 0.95],
        ("minilm", 10): [0.68, 0.70, 0.72],
        ("minilm", 100): [0.86, 0.88, 0.90],
    }
    rows = [
        {"condition": c, "budget": b, "acc": value, "pair": pair}
        for (c, b), values in cells.items()
        for value, pair in zip(values, pairs)
    ]
    return pd.DataFrame(rows)


def test_paired_table_pairs_runs_by_key_within_each_budget():
    table = _study()
    table.loc[(table["condition"] == "minilm") & (table["budget"] == 100), "pair"] = ["0", "1", "9"]
    paired = paired_table(table, "acc", "scratch").set_index("budget")

    assert list(paired["condition"]) == ["minilm", "minilm"]
    assert paired.loc[10, "pairs"] == 3 and paired.loc[10, "diff"] == pytest.approx(0.15)
    assert paired.loc[100, "pairs"] == 2  # subset "9" has no scratch run
    assert paired.loc[100, "diff"] == pytest.approx(((0.86 - 0.70) + (0.88 - 0.75)) / 2)


def test_percentile_interval_keeps_infinite_resamples_and_bootstrap_is_seeded():
    assert percentile_interval([1.0, 2.0, 3.0, math.inf] * 10) == (1.0, math.inf)
    table = _study()
    first, again = bootstrap_means(table, "acc", 500, seed=0), bootstrap_means(table, "acc", 500, seed=0)
    assert all((first[cell] == again[cell]).all() for cell in first)
    other = bootstrap_means(table, "acc", 500, seed=1)
    assert any((first[cell] != other[cell]).any() for cell in first)
    low, high = percentile_interval(first[("scratch", 10)])
    assert 0.50 <= low < 0.55 < high <= 0.60  # the cell's mean, within its runs' range


def test_analysis_intervals_are_deterministic_and_contain_the_point_estimates():
    first, again = analyse(_study(), "acc", "scratch"), analyse(_study(), "acc", "scratch")
    pd.testing.assert_frame_equal(first.efficiency, again.efficiency)
    pd.testing.assert_frame_equal(first.aulc, again.aulc)

    efficiency = first.efficiency.set_index("budget")
    # minilm's 0.70 at 10 labels: scratch needs 10**1.75 = 56 labels, 5.6x.
    assert efficiency.loc[10, "multiplier"] == pytest.approx(10**0.75)
    assert efficiency.loc[10, "ci_low"] < 10**0.75 < efficiency.loc[10, "ci_high"] < math.inf
    # AULC over 10-100, the range both conditions share; scratch's own range runs to 1000.
    assert first.shared_range == (10.0, 100.0)
    aulc_by = first.aulc.set_index("condition")
    assert aulc_by.loc["scratch", "shared_aulc"] == pytest.approx((0.55 + 0.75) / 2)
    assert aulc_by.loc["scratch", "aulc"] == pytest.approx((0.65 + 0.825) / 2)
    for row in first.aulc.itertuples():
        assert row.ci_low <= row.shared_aulc <= row.ci_high


def test_unpaired_runs_give_no_paired_table():
    assert analyse(_study().drop(columns="pair"), "acc", "scratch").paired is None
    assert analyse(_study().assign(pair=None), "acc", "scratch").paired is None


def test_report_markdown_leads_with_plain_language_summary_and_shows_intervals():
    context = ReportContext(
        experiment="toy", parent_run_id=None, tracking_uri="sqlite:///x.db", metric="acc",
        budget="data.train_size", condition=["init.name"], baseline="scratch", runs_used=15,
        pair="data.data_seed",
    )
    markdown = report_markdown(analyse(_study(), "acc", "scratch"), context, "curve.png")

    # 5.6x at 10 labels; the 95% interval of the mean difference 0.15 +- 4.30 * 0.03 / sqrt(3).
    p = stats.ttest_rel([0.68, 0.70, 0.72], [0.50, 0.55, 0.60]).pvalue
    assert "- `minilm` needs 5.6x fewer labels than `scratch` to reach 0.7 acc at 10 labels (95% CI " in (
        markdown
    )
    assert (
        f"- `minilm` vs `scratch` at 10 labels: +0.15 acc (95% CI +0.0755 to +0.225, p={p:.3f}, "
        "3 pairs by `data.data_seed`)"
    ) in markdown
    assert "- AULC over the 10–100 labels all conditions share: `scratch` 0.65 (95% CI " in markdown
    assert markdown.index("## Summary") < markdown.index("## Study")
    assert "95% t interval over runs" in markdown
    half = T_975_2 * 0.05 / math.sqrt(3)  # scratch at 10 labels: mean 0.55, std 0.05
    assert f"| `scratch` | 0.550 ± 0.050 [{0.55 - half:.3f}, {0.55 + half:.3f}] (n=3) |" in markdown
    assert f"| `minilm` | +0.150 [+0.075, +0.225] p={p:.3f} * (3 pairs) |" in markdown


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
    report = write_report(
        EXPERIMENT, store["parent"], tracking_uri=store["uri"], out_dir=tmp_path, pair="seed"
    )

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
    # 95% t interval with 1 degree of freedom: 0.55 +- 12.706 * sqrt(0.005) / sqrt(2) = 0.55 +- 0.635.
    half = stats.t.ppf(0.975, 1) * math.sqrt(0.005) / math.sqrt(2)
    assert summary.loc[("scratch", 10), "ci_low"] == pytest.approx(0.55 - half)
    assert summary.loc[("scratch", 10), "ci_high"] == pytest.approx(0.55 + half)
    # pretrained - scratch on seeds 0 and 1 at 10 labels: 0.2 and 0.1.
    assert summary.loc[("pretrained", 10), "diff"] == pytest.approx(0.15)
    assert summary.loc[("pretrained", 10), "p"] == pytest.approx(
        stats.ttest_rel([0.7, 0.7], [0.5, 0.6]).pvalue
    )
    assert summary.loc[("pretrained", 10), "multiplier"] == pytest.approx(10**0.75)
    assert summary.loc[("pretrained", 100), "multiplier_ci_high"] == math.inf

    markdown = report.read_text()
    assert "| `scratch` | 0.550 ± 0.071 [-0.085, 1.185] (n=2) | 0.750 ± 0.071 [0.115, 1.385] (n=2) |" in (
        markdown
    )
    assert "| `pretrained` | 0.700 ± 0.000 [0.700, 0.700] (n=2) | 0.900 ± 0.071 [0.265, 1.535] (n=2) |" in (
        markdown
    )
    # 10**1.75 = 56 labels; in resamples scratch's curve needs 31.6 (3.2x) to 100 labels (10x).
    assert "| `pretrained` | 5.6x (56) [3.2–10x] | > max [> max] |" in markdown
    # AULC over the shared 10-100 labels, its bootstrap interval, then over each condition's own range.
    assert "| `scratch` | 0.650 | [0.600, 0.700] | 0.650 | 10–100 | 2 |" in markdown
    assert "| `pretrained` | 0.800 | [0.775, 0.825] | 0.800 | 10–100 | 2 |" in markdown
    assert (
        "- `pretrained` needs 5.6x fewer labels than `scratch` to reach 0.7 test/accuracy at 10 labels "
        "(95% CI 3.2–10x)"
    ) in markdown
    # At 100 labels both pairs differ by 0.15 (up to rounding): no spread, so no test.
    assert (
        "| `pretrained` | +0.150 [-0.485, +0.785] p=0.205 (2 pairs) "
        "| +0.150 [+0.150, +0.150] p n/a (2 pairs) |"
    ) in markdown
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
    # pretrained is the baseline here
    assert "| `scratch` | <= 1x [<= 1x] | 0.18x (18) [<= 0.1x to 0.46x] |" in out
    assert "No run records `data.data_seed`, so runs are not paired" in out  # the default --pair
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
