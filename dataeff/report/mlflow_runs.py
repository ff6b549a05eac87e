"""Load a study's runs from MLflow, and attach the report to the study's parent run.

A study is one Hydra multirun: child runs tagged `mlflow.parentRunId` = the parent's id. Runs
are loaded into a DataFrame with MLflow's column names (`params.x`, `tags.x`, `metrics.x`);
the functions that pick a study out of it are pure, so they are tested without a store.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Experiment, LifecycleStage, Run

from dataeff.errors import UserError
from dataeff.report.curves import condition_labels
from dataeff.report.references import reference_keys
from dataeff.runs.keys import LOOP_ROLE
from dataeff.runs.store import default_tracking_uri, refuse_foreign_file, take_credentials
from dataeff.runs.tags import JOB_PLACE_TAG, SMOKE_TAG

PARENT_TAG = "mlflow.parentRunId"
FINISHED = "FINISHED"
ARTIFACT_PATH = "report"
BASE_COLUMNS = ["run_id", "run_name", "status", "start_time", "parent_run_id"]
MAX_LISTED = 30  # keep error messages readable in stores with many experiments or keys
LABELS, VAL_SIZE = "data.labels", "data.val_size"  # the labels a run saw, its validation share


def resolve_tracking_uri(tracking_uri: str | None) -> str:
    """The store to read (the jobs' default unless given); credentials in the URI move to MLflow's
    variables, out of the report."""
    return take_credentials(tracking_uri or default_tracking_uri())


def connect(tracking_uri: str) -> MlflowClient:
    """A client for an existing store; refuse a missing SQLite file, which MLflow would create."""
    prefix = "sqlite:///"
    if tracking_uri.startswith(prefix) and not Path(tracking_uri[len(prefix) :]).exists():
        raise UserError(
            f"No MLflow store at {tracking_uri} (run from the directory that holds it). "
            "Pass --tracking-uri or set MLFLOW_TRACKING_URI to point at your store."
        )
    if tracking_uri.startswith(prefix):
        refuse_foreign_file(Path(tracking_uri[len(prefix) :]))
    return MlflowClient(tracking_uri=tracking_uri)


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED]) or "none"
    return shown + (f", ... ({len(names)} in all)" if len(names) > MAX_LISTED else "")


def find_experiment(client: MlflowClient, name: str) -> Experiment:
    experiment = client.get_experiment_by_name(name)
    if experiment is None or experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        names = sorted(e.name for e in client.search_experiments(max_results=1000))
        raise UserError(
            f"No experiment named {name!r} in {client.tracking_uri}. "
            f"Experiments there: {_listing(names)}. Pass one of them with --experiment, "
            "or point --tracking-uri (or MLFLOW_TRACKING_URI) at the store that holds yours."
        )
    return experiment


def _search_all_runs(client: MlflowClient, experiment_id: str) -> Iterator[Run]:
    page_token = None
    while True:
        page = client.search_runs(
            [experiment_id], order_by=["attributes.start_time DESC"], page_token=page_token
        )
        yield from page
        page_token = page.token
        if not page_token:
            return


def _run_row(run: Run) -> dict:
    info, data = run.info, run.data
    return {
        "run_id": info.run_id,
        "run_name": info.run_name,
        "status": info.status,
        "start_time": info.start_time,
        "parent_run_id": data.tags.get(PARENT_TAG),
        **{f"params.{key}": value for key, value in data.params.items()},
        **{f"tags.{key}": value for key, value in data.tags.items()},
        **{f"metrics.{key}": value for key, value in data.metrics.items()},
    }


def load_runs(client: MlflowClient, experiment_id: str) -> pd.DataFrame:
    """All runs of the experiment, any status, one row each (columns as in mlflow.search_runs)."""
    rows = [_run_row(run) for run in _search_all_runs(client, experiment_id)]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=BASE_COLUMNS)


def parent_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Top-level runs that have children, newest first (a smoke-test sweep is not a study; an
    active-learning loop inside a sweep is part of the sweep's study)."""
    top = runs[runs["parent_run_id"].isna()]
    parents = not_smoke(top[top["run_id"].isin(set(runs["parent_run_id"].dropna()))])
    return parents.sort_values("start_time", ascending=False)


def latest_parent_run_id(runs: pd.DataFrame) -> str | None:
    """The newest run that has children, or None when the experiment has no parent runs."""
    parents = parent_runs(runs)
    return None if parents.empty else str(parents["run_id"].iloc[0])


STAGE_ROLES = ("pretraining", "tuning", "audit")  # runs a study makes on its way, not its results


def select_study(runs: pd.DataFrame, parents: Sequence[str], experiment: str) -> pd.DataFrame:
    """The children of `parents` (several when one study ran as several sweeps); with none, every
    run that is not itself a parent, nor a study's stage (a pretraining, a tuning trial). Smoke
    tests (`trainer.fast_dev_run`) are never results."""
    if not parents:
        staged = runs["tags.role"].isin(STAGE_ROLES) if "tags.role" in runs else False
        return not_smoke(runs[~runs["run_id"].isin(set(runs["parent_run_id"].dropna())) & ~staged])
    for parent in parents:
        if not (runs["parent_run_id"] == parent).any():
            listed = [f"{row.run_id} ({row.run_name})" for row in parent_runs(runs).itertuples()]
            raise UserError(
                f"Run {parent!r} has no child runs in experiment {experiment!r}. "
                f"Parent runs there, newest first: {_listing(listed)}. "
                "Pass them with --parent, or leave --parent out to use the newest."
            )
    return not_smoke(rounds_for_loops(runs, latest_per_job(runs[runs["parent_run_id"].isin(parents)])))



def rounds_for_loops(runs: pd.DataFrame, study: pd.DataFrame) -> pd.DataFrame:
    """An active-learning loop stands for its rounds: each a classify run at a number of labels."""
    if "tags.role" not in study:
        return study
    loops = study["tags.role"] == LOOP_ROLE
    rounds = runs[runs["parent_run_id"].isin(set(study.loc[loops, "run_id"]))]
    return pd.concat([study[~loops], rounds]) if loops.any() else study


def not_smoke(runs: pd.DataFrame) -> pd.DataFrame:
    smoke = f"tags.{SMOKE_TAG}"
    return runs[runs[smoke] != "true"] if smoke in runs else runs


def latest_per_job(study: pd.DataFrame) -> pd.DataFrame:
    """A sweep run again continues its parent (dataeff.runs.keys): of the runs of one job (same
    parent, same place in the sweep) the newest counts, so a job retried after a failure counts once."""
    job = f"tags.{JOB_PLACE_TAG}"
    if job not in study:
        return study
    newest_first = study.sort_values("start_time", ascending=False)
    keep = ~newest_first.duplicated(["parent_run_id", job]) | newest_first[job].isna()
    return newest_first[keep].sort_index()


def key_values(runs: pd.DataFrame, key: str) -> pd.Series:
    """The value of `key` per run: its tag when set, else its param (NaN when neither)."""
    missing = pd.Series(float("nan"), index=runs.index, dtype=object)
    tags = runs.get(f"tags.{key}", missing)
    return tags.combine_first(runs.get(f"params.{key}", missing))


def _keys_with_prefix(runs: pd.DataFrame, *prefixes: str) -> list[str]:
    keys = {
        column.split(".", 1)[1]
        for column in runs.columns
        if column.startswith(prefixes) and runs[column].notna().any()
    }
    return sorted(key for key in keys if not key.startswith("mlflow."))


def _count_runs(count: int) -> str:
    return f"{count} run" + ("" if count == 1 else "s")


def finished_runs(study: pd.DataFrame, where: str) -> tuple[pd.DataFrame, list[str]]:
    """FINISHED runs, and notes counting the others (failed, killed, still running)."""
    finished = study[study["status"] == FINISHED]
    others = study.loc[study["status"] != FINISHED, "status"].value_counts()
    notes = [f"Ignored {_count_runs(n)} with status {status}." for status, n in others.items()]
    if finished.empty:
        found = ", ".join(f"{n} {status}" for status, n in others.items()) or "no runs"
        raise UserError(
            f"No FINISHED runs in {where} (found: {found}). Wait for the sweep to finish, "
            "or choose another study with --parent RUN_ID."
        )
    return finished, notes


def _require_key(runs: pd.DataFrame, values: pd.Series, key: str, option: str, where: str):
    if values.isna().all():
        available = _keys_with_prefix(runs, "tags.", "params.")
        raise UserError(
            f"No finished run in {where} has a tag or param {key!r}. "
            f"Tags and params there: {_listing(available)}. Choose one with {option}."
        )


def study_table(
    study: pd.DataFrame,
    metric: str,
    budget: str,
    condition: Sequence[str],
    where: str,
    pair: str | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """One row per usable run: run_id, condition, budget, <metric>, and with `pair` (a tag/param
    such as data.data_seed) a `pair` column, the key that pairs runs across conditions; plus notes
    on what was left out. Raises UserError when no run can be used, naming the keys that do exist."""
    runs, notes = finished_runs(study, where)
    metric_values = runs.get(f"metrics.{metric}", pd.Series(float("nan"), index=runs.index))
    if metric_values.isna().all():
        raise UserError(
            f"Metric {metric!r} is not logged by any finished run in {where}. "
            f"Metrics there: {_listing(_keys_with_prefix(runs, 'metrics.'))}. "
            "Choose one with --metric."
        )
    budget_values = key_values(runs, budget)
    _require_key(runs, budget_values, budget, "--budget", where)
    condition_values = pd.DataFrame({key: key_values(runs, key) for key in condition})
    for key in condition:
        _require_key(runs, condition_values[key], key, "--condition", where)

    table = pd.DataFrame(
        {
            "run_id": runs["run_id"],
            "condition": condition_labels(condition_values, list(condition)),
            "budget": pd.to_numeric(budget_values, errors="coerce"),
            metric: pd.to_numeric(metric_values, errors="coerce"),
        }
    )
    usable = table[metric].notna() & condition_values.notna().all(axis=1)
    # A log-scale x axis, and the interpolation in log10(x), need positive budgets.
    usable &= table["budget"] > 0
    left_out = {
        f"no metric {metric!r}": table[metric].isna(),
        f"a missing {' or '.join(map(repr, condition))}": condition_values.isna().any(axis=1),
        f"no positive numeric {budget!r}": ~(table["budget"] > 0),
    }
    for reason, mask in left_out.items():
        if mask.any():
            notes.append(f"Left out {_count_runs(int(mask.sum()))} with {reason}.")
    notes.append(validation_note(runs[usable], budget))
    for column, key in reference_keys(metric).items():  # no learning's scores, and one-class runs
        table[column] = pd.to_numeric(runs.get(f"metrics.{key}", pd.Series(float("nan"), index=runs.index)),
                                      errors="coerce")
    table["seed"] = key_values(runs, "seed")  # the training seed: apart from the pair when swept apart
    table["tuned"] = key_values(runs, "tune.value")  # chosen on validation per cell (tune=...), else NaN
    table["tuned_param"] = key_values(runs, "tune.param")
    if pair is not None:
        table["pair"] = key_values(runs, pair)
        if table.loc[usable, "pair"].isna().all():
            notes.append(f"No run records `{pair}`, so runs are not paired: no paired test against "
                         "the baseline (`--pair KEY` names the tag or param that pairs them).")
    if not usable.any():
        raise UserError(
            f"No finished run in {where} has {metric!r}, a positive numeric {budget!r} and "
            f"all of {', '.join(condition)}. Check --metric, --budget and --condition."
        )
    return table[usable].reset_index(drop=True), notes


def tuned_table(table: pd.DataFrame) -> pd.DataFrame | None:
    """condition, budget, param, value: what `tune` chose per cell (on validation), or None."""
    if "tuned" not in table or table["tuned"].isna().all():
        return None
    chosen = table.dropna(subset=["tuned"]).groupby(["condition", "budget"])
    return pd.DataFrame({"param": chosen["tuned_param"].first(),
                         "value": chosen["tuned"].agg(lambda v: ", ".join(sorted(set(v))))}).reset_index()


def validation_note(runs: pd.DataFrame, budget: str) -> str:
    """Which labels the budget axis counts: a run also chooses its checkpoint on labelled
    validation examples, and a few-shot comparison is only honest if that shows."""
    if budget == LABELS:
        return f"The budget axis (`{LABELS}`) counts training and validation labels."
    sizes = pd.to_numeric(runs.get(f"tags.{VAL_SIZE}", pd.Series(dtype=float)), errors="coerce").dropna()
    if sizes.empty:
        return "The runs record no validation size: the budget axis may leave validation labels out."
    modes = "/".join(sorted(set(runs.get(f"params.{VAL_SIZE}", pd.Series(dtype=str)).dropna()))) or "?"
    low, high = int(sizes.min()), int(sizes.max())
    span = str(low) if low == high else f"{low}–{high}"
    return (f"Validation labels are not on the budget axis: each run also chose its checkpoint on "
            f"{span} of them (data.val_size={modes}); `--budget {LABELS}` counts both.")


def log_report(client: MlflowClient, parent_run_id: str, paths: Sequence[Path]) -> None:
    """Attach the report files to the parent run, under `report/`."""
    for path in paths:
        client.log_artifact(parent_run_id, str(path), artifact_path=ARTIFACT_PATH)
