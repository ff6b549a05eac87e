"""`dataeff-report`: summarise a study's runs into a Markdown report, a CSV and a plot."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient

from dataeff.errors import UserError
from dataeff.report import mlflow_runs
from dataeff.report.curves import default_baseline
from dataeff.report.plot import plot_learning_curves
from dataeff.report.render import ReportContext, report_markdown
from dataeff.report.uncertainty import analyse, cell_table

DEFAULT_METRIC = "test/accuracy"
DEFAULT_BUDGET = "data.train_size"
DEFAULT_CONDITION = ("init.name",)
DEFAULT_PAIR = "data.data_seed"  # the labelled subset: runs on the same one are paired
REPORT_FILE, SUMMARY_FILE, PLOT_FILE = "report.md", "summary.csv", "learning_curve.png"
FILES = (REPORT_FILE, SUMMARY_FILE, PLOT_FILE)


def default_out_dir(experiment: str, parents: Sequence[str]) -> Path:
    """Beside the store the jobs wrote: $DATAEFF_ROOT/reports, or ./reports without it."""
    root = Path(os.environ.get("DATAEFF_ROOT") or ".")
    return root / "reports" / experiment / ("+".join(parents) or "all-runs")


def choose_baseline(conditions: Sequence[str], baseline: str | None) -> str:
    if baseline is None:
        return default_baseline(conditions)
    if baseline not in conditions:
        raise UserError(
            f"Baseline {baseline!r} is not among the conditions: {', '.join(sorted(conditions))}. "
            "Pass one of them with --baseline."
        )
    return baseline


@dataclass
class _Store:
    """An experiment's runs, loaded once, with the client that can log to them."""

    client: MlflowClient
    tracking_uri: str
    runs: pd.DataFrame


def _open_store(experiment: str, tracking_uri: str | None) -> _Store:
    tracking_uri = mlflow_runs.resolve_tracking_uri(tracking_uri)
    client = mlflow_runs.connect(tracking_uri)
    experiment_id = mlflow_runs.find_experiment(client, experiment).experiment_id
    return _Store(client, tracking_uri, mlflow_runs.load_runs(client, experiment_id))


def write_report(
    experiment: str,
    parent_run_id: str | Sequence[str] | None,
    *,
    tracking_uri: str | None = None,
    metric: str = DEFAULT_METRIC,
    budget: str = DEFAULT_BUDGET,
    condition: str | Sequence[str] = DEFAULT_CONDITION,
    baseline: str | None = None,
    out_dir: str | Path | None = None,
    pair: str = DEFAULT_PAIR,
) -> Path:
    """Write report.md, summary.csv and learning_curve.png for a study; return report.md's path.

    The study is the children of `parent_run_id` (one id, or several when a study was run as
    several sweeps), or every non-parent run of the experiment when it is None. The files are also
    logged to each parent under the artifact path "report".
    `condition` names tags/params whose values, joined with "/", label a condition; `budget`
    names the tag/param holding the labels used; `pair` the tag/param whose equal values pair runs
    of different conditions for the paired test. Raises UserError on unusable input.
    """
    return _write_report(
        _open_store(experiment, tracking_uri),
        experiment,
        parent_run_id,
        metric=metric,
        budget=budget,
        condition=condition,
        baseline=baseline,
        out_dir=out_dir,
        pair=pair,
    )


def _write_report(
    store: _Store,
    experiment: str,
    parent_run_id: str | Sequence[str] | None,
    *,
    metric: str,
    budget: str,
    condition: str | Sequence[str],
    baseline: str | None,
    out_dir: str | Path | None,
    pair: str = DEFAULT_PAIR,
) -> Path:
    condition = [condition] if isinstance(condition, str) else list(condition)
    parents = [parent_run_id] if isinstance(parent_run_id, str) else list(parent_run_id or [])
    study = mlflow_runs.select_study(store.runs, parents, experiment)
    where = f"experiment {experiment!r}"
    if parents:
        where += f", parent run {', '.join(parents)}"
    table, notes = mlflow_runs.study_table(study, metric, budget, condition, where, pair)
    conditions = sorted(set(table["condition"]))
    analysis = analyse(table, metric, choose_baseline(conditions, baseline))
    context = ReportContext(
        experiment=experiment,
        parent_run_id=", ".join(parents) or None,
        tracking_uri=store.tracking_uri,
        metric=metric,
        budget=budget,
        condition=condition,
        baseline=analysis.baseline,
        runs_used=len(table),
        notes=notes,
        pair=pair,
        tuned=mlflow_runs.tuned_table(table),
    )
    out = Path(out_dir) if out_dir is not None else default_out_dir(experiment, parents)
    out.mkdir(parents=True, exist_ok=True)
    cell_table(analysis).to_csv(out / SUMMARY_FILE, index=False)
    plot_learning_curves(analysis, context, out / PLOT_FILE)
    (out / REPORT_FILE).write_text(report_markdown(analysis, context, PLOT_FILE), encoding="utf-8")
    for parent in parents:
        mlflow_runs.log_report(store.client, parent, [out / name for name in FILES])
    return out / REPORT_FILE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dataeff-report",
        description="Summarise a study (the child runs of one multirun parent run): "
        "mean ± std and 95% t intervals per condition x label budget, learning curves, paired "
        "tests, data-efficiency multipliers against a baseline and AULC with bootstrap intervals. "
        "Writes report.md, summary.csv and learning_curve.png, "
        "logs them to the parent run under 'report/', and prints the Markdown.",
    )
    parser.add_argument("--experiment", required=True, help="MLflow experiment name")
    parser.add_argument(
        "--parent",
        nargs="+",
        metavar="RUN_ID",
        help="parent run id, or several for a study run as several sweeps (default: the newest "
        "run with children; without any, all runs)",
    )
    parser.add_argument("--metric", default=DEFAULT_METRIC, help="metric key (%(default)s)")
    parser.add_argument(
        "--budget", default=DEFAULT_BUDGET, help="tag/param giving the labels used (%(default)s)"
    )
    parser.add_argument(
        "--condition",
        nargs="+",
        default=list(DEFAULT_CONDITION),
        metavar="KEY",
        help="tag/param keys whose values, joined with '/', label a condition (init.name)",
    )
    parser.add_argument(
        "--baseline",
        help="baseline condition label (default: the first of scratch, none, text present, "
        "else the first condition alphabetically)",
    )
    parser.add_argument(
        "--pair",
        default=DEFAULT_PAIR,
        metavar="KEY",
        help="tag/param that pairs runs of different conditions for the paired t-test: the same "
        "value means the same labelled subset (%(default)s)",
    )
    parser.add_argument(
        "--out", type=Path, help="output directory (default: $DATAEFF_ROOT/reports/<experiment>/<parent id>)"
    )
    parser.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
        "$DATAEFF_ROOT/mlflow.db, else ./mlflow.db)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        store = _open_store(args.experiment, args.tracking_uri)
        parent = args.parent or mlflow_runs.latest_parent_run_id(store.runs)
        report = _write_report(
            store,
            args.experiment,
            parent,
            metric=args.metric,
            budget=args.budget,
            condition=args.condition,
            baseline=args.baseline,
            out_dir=args.out,
            pair=args.pair,
        )
    except UserError as error:
        print(f"dataeff-report: error: {error}", file=sys.stderr)
        return 1
    print(report.read_text(encoding="utf-8"))
    print(f"Wrote {report.parent}/ ({', '.join(FILES)})", file=sys.stderr)
    return 0
