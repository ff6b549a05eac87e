"""The report of a sweep that is not a data-efficiency study (`dataeff-train -m seed=1,2,3
task.mask_prob=0.15,0.3`, an Optuna search): per setting of the swept overrides, its runs' objective
and test metrics as mean ± std with a t interval where two or more runs (seeds) share the setting.

The swept keys are read off the jobs' own overrides (tag `dataeff.overrides`): those whose values
differ between jobs. Seeds are replicates, not settings: runs that differ only in a seed are one
row. Printed at the end of the sweep, written to `<sweep dir>/report/sweep.md` and logged to the
parent run, as a study's report is.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow import MlflowClient

from dataeff.errors import UserError
from dataeff.report import mlflow_runs
from dataeff.report.headline import LEVEL
from dataeff.report.markdown import markdown_table
from dataeff.report.uncertainty import t_interval
from dataeff.runs.tags import OBJECTIVE_TAG, OVERRIDES_TAG

SWEEP_FILE = "sweep.md"
OVERRIDES = f"tags.{OVERRIDES_TAG}"  # the column of mlflow.search_runs
REFERENCE_WORDS = ("majority_", "chance_", "top_prediction_share")  # logged beside, not results
MAX_METRICS = 3


def overrides_of(text: str) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in str(text).split() if "=" in item)
    return {key.lstrip("+~"): value for key, value in pairs}


def is_seed(key: str) -> bool:
    return key.rsplit(".", 1)[-1] == "seed" or key.endswith("_seed")


def settings(runs: pd.DataFrame) -> tuple[pd.Series, list[str]]:
    """Each run's setting ("task.mask_prob=0.3"), and the keys swept besides seeds."""
    texts = runs.get(OVERRIDES, pd.Series("", runs.index))
    given = pd.DataFrame([overrides_of(text) for text in texts], index=runs.index)
    swept = [key for key in given.columns if given[key].nunique(dropna=False) > 1 and not is_seed(key)]
    labels = given[swept].astype(str).apply(lambda row: " ".join(f"{k}={v}" for k, v in row.items()), axis=1)
    return (labels if swept else pd.Series("(all jobs)", index=runs.index)), swept


def score_text(values: pd.Series) -> str:
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return ""
    if len(values) == 1:
        return f"{values.iloc[0]:.4g} (n=1)"
    low, high = t_interval(values)
    return f"{values.mean():.4g} ± {values.std(ddof=1):.2g} [{low:.4g}, {high:.4g}] (n={len(values)})"


def sweep_markdown(experiment: str, parent: str, children: pd.DataFrame, objective: str | None,
                   mode: str = "max") -> str:
    """The settings in order of their mean objective, best first (`mode`: max or min)."""
    finished, notes = mlflow_runs.finished_runs(children, f"the sweep {parent}")
    label, swept = settings(finished)
    metrics = sorted(column for column in finished.columns if column.startswith("metrics.test/")
                     and not any(word in column for word in REFERENCE_WORDS))[:MAX_METRICS]
    columns = {f"objective ({objective or 'returned'})": f"tags.{OBJECTIVE_TAG}",
               **{column.removeprefix("metrics."): column for column in metrics}}
    rows = []
    for setting, runs in finished.groupby(label, sort=False):
        scores = [score_text(runs[column]) if column in runs else "" for column in columns.values()]
        rows.append((pd.to_numeric(runs.get(f"tags.{OBJECTIVE_TAG}"), errors="coerce").mean(),
                     [f"`{setting}`", *scores]))
    sign = -1 if mode == "max" else 1
    rows.sort(key=lambda row: np.inf if math.isnan(row[0]) else sign * row[0])
    given = finished.get(OVERRIDES, [])
    seeds = sorted({key for text in given for key in overrides_of(text) if is_seed(key)})
    lines = [f"# Sweep report: {experiment}", "",
             f"- Parent run `{parent}`: {len(finished)} finished job(s); swept: "
             f"{', '.join(f'`{key}`' for key in swept) or 'nothing but seeds'}"
             + (f"; replicates over {', '.join(f'`{key}`' for key in seeds)}" if seeds else ""),
             f"- Each cell: mean ± std [{LEVEL} t interval over runs] (n); one run gives no interval.",
             *[f"- {note}" for note in notes], "",
             markdown_table(["setting", *columns], [row for _, row in rows]), ""]
    return "\n".join(lines)


def write_sweep_table(experiment: str, parent: str, tracking_uri: str, out_dir: Path,
                      objective: str | None = None, mode: str = "max") -> Path:
    """sweep.md for the sweep `parent` of `experiment`, also logged to the parent under `report/`."""
    client = MlflowClient(tracking_uri)
    found = mlflow_runs.find_experiment(client, experiment)
    every = mlflow_runs.load_runs(client, found.experiment_id)
    children = mlflow_runs.select_study(every, [parent], experiment)
    if children.empty:
        raise UserError(f"The sweep {parent} has no runs to report.")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / SWEEP_FILE
    path.write_text(sweep_markdown(experiment, parent, children, objective, mode), encoding="utf-8")
    mlflow_runs.log_report(client, parent, [path])
    return path
