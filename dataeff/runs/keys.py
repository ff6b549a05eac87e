"""Restartable studies: the same sweep command run again continues the same parent run, and a
job it already FINISHED (same config) is skipped instead of trained again (`rerun=true` forces).

A job is known by its key, a hash of its composed config with the interpolations left as
written, so the output folders (`${hydra:runtime.output_dir}`) and the store do not count; an
edited config file or a new override makes a new key, hence a new run. A sweep is known by
its overrides and its grid (`hydra.sweeper.params`): another grid is another study.
"""

from __future__ import annotations

import hashlib
import json

from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from omegaconf import DictConfig, OmegaConf

from dataeff.overrides import IDENTITY_FREE, typed_overrides
from dataeff.runs.tags import JOB_KEY_TAG, JOB_PLACE_TAG, OBJECTIVE_TAG, SWEEP_KEY_TAG

LOOP_ROLE = "active_learning"  # tag role of an active-learning loop, whose results are its child runs


def digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def job_key(cfg: DictConfig) -> str:
    """Taken before the app fills anything in (the pretraining stage, the GPU slot)."""
    tree = OmegaConf.to_container(cfg, resolve=False)
    return digest({key: value for key, value in tree.items() if key not in IDENTITY_FREE})


def canonical(overrides) -> list[str]:
    """Overrides in any order, the last of one key winning as in Hydra, `rerun` aside."""
    last = {o.split("=")[0]: o for o in overrides}
    return sorted(o for key, o in last.items() if key.lstrip("+~") != "rerun")


def job_place(overrides) -> str:
    """Which job of its sweep a run is (whatever its config): its overrides."""
    return digest(canonical(overrides))


def sweep_key(config: DictConfig) -> str:
    """The sweep's command-line overrides and its grid."""
    overrides = canonical(typed_overrides(config.hydra))
    params = config.hydra.sweeper.get("params")
    grid = OmegaConf.to_container(params, resolve=False) if params else {}
    return digest([overrides, grid])


def earlier_sweep(client: MlflowClient, experiment_id: str, key: str) -> Run | None:
    """The newest parent run of the same sweep in this experiment."""
    found = client.search_runs([experiment_id], f"tags.`{SWEEP_KEY_TAG}` = '{key}'",
                               order_by=["attributes.start_time DESC"], max_results=1)
    return found[0] if found else None


def finished_job(client: MlflowClient, parent_id: str, key: str) -> Run | None:
    """A FINISHED child of this sweep's parent with the same job key."""
    experiment = client.get_run(parent_id).info.experiment_id
    found = client.search_runs([experiment], f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent_id}' and "
                               f"tags.`{JOB_KEY_TAG}` = '{key}' and attributes.status = 'FINISHED'",
                               order_by=["attributes.start_time DESC"], max_results=1)
    return found[0] if found else None


def recorded_objective(run: Run) -> float | None:
    value = run.data.tags.get(OBJECTIVE_TAG)
    return None if value in (None, "None") else float(value)


def latest_per_job(runs: list[Run]) -> list[Run]:
    """A continued sweep's children: the newest run of each job."""
    latest: dict[str, Run] = {}
    for run in sorted(runs, key=lambda r: r.info.start_time):
        latest[run.data.tags.get(JOB_PLACE_TAG, run.info.run_id)] = run
    return list(latest.values())
