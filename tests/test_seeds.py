"""Two seeds, two axes: `data.data_seed` picks the labelled examples, `seed` the training (weights,
batch order, augmentation draws); a study that sweeps both learns from the report which moves
its scores more."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from dataeff.report import cli
from dataeff.report.render import ReportContext, report_markdown
from dataeff.report.seeds import spread_by_source
from dataeff.report.uncertainty import analyse
from tests.conftest import FAST, run_app, runs


def crossed_table() -> pd.DataFrame:
    rows = [("a", 10, "0", "0", 0.6), ("a", 10, "0", "1", 0.7), ("a", 10, "1", "0", 0.8),
            ("a", 10, "1", "1", 0.9), ("b", 10, "0", "0", 0.5), ("b", 10, "1", "0", 0.5),
            ("b", 10, "0", "1", 0.7), ("b", 10, "1", "1", 0.7)]
    return pd.DataFrame(rows, columns=["condition", "budget", "pair", "seed", "acc"])


def test_spread_by_source_by_hand():
    spread = spread_by_source(crossed_table(), "acc").set_index("condition")
    # a: subset means 0.65 and 0.85 -> std 0.1414; each subset's two seeds differ by 0.1 -> 0.0707
    assert spread.loc["a", "sd_subsets"] == pytest.approx(math.sqrt(0.02))
    assert spread.loc["a", "sd_seeds"] == pytest.approx(math.sqrt(0.005))
    # b: the subset does not matter (means 0.6 and 0.6), the training seed moves it by 0.2
    assert spread.loc["b", "sd_subsets"] == pytest.approx(0.0)
    assert spread.loc["b", "sd_seeds"] == pytest.approx(math.sqrt(0.02))
    assert list(spread[["subsets", "seeds"]].loc["a"]) == [2, 2]


def test_the_report_shows_the_spread_only_when_both_axes_were_swept():
    context = ReportContext("s", None, "sqlite:///x", "acc", "budget", ["init.name"], "a", 8,
                            pair="data.data_seed")
    text = report_markdown(analyse(crossed_table(), "acc", "a"), context, "curve.png")
    assert "## Where the spread comes from" in text
    assert "moves the score more than training randomness in 1 of 2 cells" in text
    assert "0.1414 / 0.0707 (2 x 2)" in text
    tied = crossed_table().assign(seed=lambda t: t["pair"])  # seed: ${data.data_seed}, as studies set
    assert "Where the spread" not in report_markdown(analyse(tied, "acc", "a"), context, "curve.png")


def test_a_sweep_over_both_seeds_reports_where_the_spread_comes_from(workdir, tmp_path, capsys):
    assert run_app(*FAST, "task=classify", "data.fraction=0.05", "trainer.limit_test_batches=2",
                   "seed=0,1", "data.data_seed=0,1", multirun=True) == 0
    children = [r for r in runs(workdir, "classify") if "mlflow.parentRunId" in r.data.tags]
    assert sorted((r.data.params["seed"], r.data.params["data.data_seed"]) for r in children) == [
        ("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")]
    assert len({r.data.tags["data.subset_hash"] for r in children}) == 2  # data_seed alone picks them
    assert cli.main(["--experiment", "classify", "--out", str(tmp_path / "report")]) == 0
    assert "## Where the spread comes from" in capsys.readouterr().out
    summary = pd.read_csv(tmp_path / "report" / "summary.csv")
    by_subset = {}
    for run in children:
        by_subset.setdefault(run.data.params["data.data_seed"], []).append(run.data.metrics["test/accuracy"])
    means = pd.Series([sum(v) / 2 for v in by_subset.values()])
    assert summary["sd_subsets"].item() == pytest.approx(means.std(ddof=1))
