"""Resuming a run from a checkpoint (`ckpt_path=`): which run, and whether it may be continued."""

from __future__ import annotations

from pathlib import Path

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from dataeff.errors import UserError
from dataeff.runs.liveness import looks_dead
from dataeff.runs.outbox import OUTBOX, Outbox
from dataeff.runs.tags import HOST_TAG, OUTPUT_DIR_TAG, PID_TAG


def resumable_run(client: MlflowClient, checkpoint: dict, cfg: DictConfig) -> Run:
    """The run `ckpt_path` belongs to, if this job may continue it: in this store, of this task,
    not being trained by a live process, no writes of an outage still waiting to be sent."""
    path, run_id = cfg.ckpt_path, checkpoint.get("mlflow_run_id")
    fresh = f"start a new run from its weights instead: init=checkpoint init.source={path}"
    if run_id is None:
        raise UserError(f"ckpt_path={path} records no MLflow run, so it cannot be resumed; {fresh}.")
    try:
        run = client.get_run(run_id)
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise UserError(
            f"ckpt_path={path} belongs to MLflow run {run_id}, which is not in the store "
            f"{cfg.logger.mlflow.tracking_uri}. Resume with the store it was trained with "
            f"(DATAEFF_ROOT= or MLFLOW_TRACKING_URI=), or {fresh}.") from None
    task = checkpoint.get("task") or run.data.tags.get("task.name")
    if task and task != cfg.task.name:
        raise UserError(
            f"ckpt_path={path} is a checkpoint of task={task}, not task={cfg.task.name}; "
            f"resume it with task={task} and the data it was trained on, or {fresh}.")
    tags = run.data.tags
    if run.info.status == "RUNNING" and not looks_dead(tags, run.info.start_time):
        raise UserError(f"MLflow run {run_id} is still being trained (process {tags.get(PID_TAG)} "
                        f"on {tags.get(HOST_TAG)}); stop it before resuming from {path}, or wait "
                        "until its heartbeat is older than 30 minutes.")
    kept = Outbox(Path(tags.get(OUTPUT_DIR_TAG, ".")) / OUTBOX)
    if kept.pending():
        raise UserError(f"MLflow run {run_id} still has {kept.pending()} writes kept from an outage in "
                        f"{kept.folder}; send them first (dataeff-store replay {kept.folder.parent}), "
                        "then resume.")
    return run
