"""What a job takes from earlier runs: their artifacts, downloaded once into the cache."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from filelock import FileLock
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from dataeff.errors import UserError


def fetch_artifact(run_id: str, artifact_path: str, tracking_uri: str | None, target: Path) -> Path:
    """A run's artifact (file or folder), downloaded once into the folder `target` under a lock the
    jobs and ranks that need it share, whole or not at all: a download cut short leaves nothing."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{target}.lock"):
        if not target.exists():
            partial = Path(tempfile.mkdtemp(prefix=f".{target.name[:8]}-", dir=target.parent))
            try:
                MlflowClient(tracking_uri).download_artifacts(run_id, artifact_path, str(partial))
            except (MlflowException, OSError):
                shutil.rmtree(partial, ignore_errors=True)
                raise
            partial.rename(target)
    return target / Path(artifact_path).name


def fetch_run_model(run_id: str, tracking_uri: str | None, cache_dir: str) -> Path:
    """The run's `hf_model/`, downloaded once into the cache (per run and end time: a resumed run
    exports again), so the jobs and ranks that start from one run share one copy."""
    client = MlflowClient(tracking_uri)
    try:
        run = client.get_run(run_id)
    except MlflowException as err:
        raise UserError(f"MLflow run {run_id} does not exist in {tracking_uri}; copy a run id from "
                        "the MLflow UI (make ui) or set MLFLOW_TRACKING_URI to its store.") from err
    target = Path(cache_dir) / "mlflow_runs" / f"{run_id}-{run.info.end_time or 'running'}"
    try:
        return fetch_artifact(run_id, "hf_model", tracking_uri, target)
    except (MlflowException, OSError) as err:
        raise UserError(f"MLflow run {run_id} has no hf_model/ artifact (did it finish?); "
                        "initialise from one of its checkpoints with init=checkpoint.") from err
