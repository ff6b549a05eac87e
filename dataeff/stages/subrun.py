"""Sub-runs: the runs a job needs first (a study's pretraining, tuning trials, the audit, active
learning's rounds). Each is the app again, with the sub-run's overrides, logging to the job's store
and study; it is found again by a key (a hash of its overrides) so that every later job, in this
sweep or the next, reuses the FINISHED run instead of training it again. Two launchers run it:

- `process` (the default): `python -m dataeff.app <overrides>` in a fresh process, as a user
  would type it; the sub-run shares nothing with the job (memory, Lightning's state, threads).
- `in_process`: the same app in this process (`subruns=in_process`), as Hydra's own launchers run
  a job: a sub-run costs no interpreter start and no 5-10 s of imports, which is what tests and
  debugging want. The caller's Hydra state (its HydraConfig, its argv, its logging) is put back
  afterwards; the sub-run seeds the global RNGs as any job does.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock
from hydra import compose
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from mlflow.tracking import MlflowClient

from dataeff.errors import UserError
from dataeff.overrides import quote, typed_overrides
from dataeff.runs.tags import ROLE_TAG, SUBRUN_KEY_TAGS

log = logging.getLogger(__name__)

APP = "dataeff.app"  # the module both launchers run, by name


def in_subprocess(argv: list[str]) -> int:
    return subprocess.run([sys.executable, "-m", APP, *argv], check=False).returncode


def in_process(argv: list[str]) -> int:
    app = importlib.import_module(APP)  # by name: the app is the layer above the stages
    # argv[0] stays this process's entry point: Lightning's DDP launcher starts the sub-run's other
    # ranks from it
    with own_hydra_state(), argv_of([sys.argv[0], *argv]):
        try:
            app.main()
        except SystemExit as done:
            return done.code if isinstance(done.code, int) else 1
    return 0


LAUNCHERS: dict[str, Callable[[list[str]], int]] = {"process": in_subprocess, "in_process": in_process}


@contextlib.contextmanager
def own_hydra_state() -> Iterator[None]:
    """The sub-run initialises Hydra and configures logging for itself; the caller's come back."""
    global_hydra, hydra_config = GlobalHydra.instance(), HydraConfig.instance()
    saved_hydra, saved_config = global_hydra.hydra, hydra_config.cfg
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    global_hydra.clear()
    try:
        yield
    finally:
        global_hydra.clear()
        if saved_hydra is not None:
            global_hydra.initialize(saved_hydra)
        hydra_config.cfg = saved_config
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


@contextlib.contextmanager
def argv_of(argv: list[str]) -> Iterator[None]:
    saved, sys.argv = sys.argv, argv
    try:
        yield
    finally:
        sys.argv = saved


@dataclass
class Where:
    """Where a sub-run goes: the study's MLflow experiment, store and folders, and its launcher."""

    study: str
    tracking_uri: str
    artifact_location: str | None
    root_dir: str
    log_dir: str
    cache_dir: str
    subruns: str = "process"  # the launcher that runs it (LAUNCHERS)

    @classmethod
    def of(cls, cfg) -> Where:
        mlflow_cfg, paths = cfg.logger.mlflow, cfg.paths
        return cls(mlflow_cfg.experiment_name, mlflow_cfg.tracking_uri, mlflow_cfg.get("artifact_location"),
                   paths.root_dir, paths.log_dir, paths.cache_dir, cfg.get("subruns", "process"))

    def overrides(self) -> list[str]:
        values = {"study": self.study, "logger.mlflow.tracking_uri": self.tracking_uri,
                  "logger.mlflow.artifact_location": self.artifact_location,
                  "paths.root_dir": self.root_dir, "paths.log_dir": self.log_dir,
                  "paths.cache_dir": self.cache_dir, "subruns": self.subruns}
        return [f"{name}={quote(value)}" for name, value in values.items() if value is not None]


def subrun_key(overrides: list[str]) -> str:
    return hashlib.sha1("\n".join(overrides).encode()).hexdigest()[:16]


def stage_run(overrides, where: Where, role: str) -> str:
    """The id of the FINISHED sub-run (`role`: pretraining, tuning, audit, al_round) these overrides
    describe, run first (by `where.subruns`) if absent; found again by a hash of the overrides."""
    overrides = [str(item) for item in overrides]
    key, tag = subrun_key(overrides), SUBRUN_KEY_TAGS[role]
    client = MlflowClient(where.tracking_uri)
    Path(where.cache_dir).mkdir(parents=True, exist_ok=True)
    # parallel jobs of a sweep (joblib launcher) wait for one run instead of each training it
    with FileLock(Path(where.cache_dir) / f"{role}-{key}.lock"):
        run_id = find_run(client, where.study, key, tag)
        if run_id is None:
            log.info("No finished %s run with key %s yet: training it (%s)", role, key, " ".join(overrides))
            launch(overrides, where, {tag: key, ROLE_TAG: role})
            run_id = find_run(client, where.study, key, tag)
        else:
            log.info("Reusing %s run %s (key %s)", role, run_id, key)
    if run_id is None:
        raise UserError(f"The {role} run (key {key}) ended without a FINISHED MLflow run; see its "
                        "output above.")
    return run_id


def find_run(client: MlflowClient, experiment_name: str, key: str, tag: str) -> str | None:
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return None
    found = client.search_runs([experiment.experiment_id],
                               f"tags.{tag} = '{key}' and attributes.status = 'FINISHED'",
                               order_by=["attributes.start_time DESC"], max_results=1)
    return found[0].info.run_id if found else None


def launch(overrides: list[str], where: Where, tags: dict) -> None:
    """The app once more (`where.subruns`: in its own process, or in this one): its own Hydra run,
    logging to the same store and study."""
    # quoted: Hydra reads a key such as 5174e00960788219 as a float (inf) and the run is never found
    tagged = [f"++tags.{name}={quote(value)}" for name, value in tags.items()]
    argv = [*overrides, *where.overrides(), *tagged]
    code = LAUNCHERS[where.subruns](argv)
    if code != 0:
        raise UserError(f"The {tags.get(ROLE_TAG, 'staged')} run failed (exit {code}); its error is printed "
                        "above. Run it alone to fix it: dataeff-train " + " ".join(overrides))


def grid_jobs(config):
    """Each job of a grid sweep (Hydra's basic sweeper) as (its composed config, its overrides);
    nothing under other sweepers, whose jobs are not known in advance."""
    if not str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return
    params = [f"{key}={value}" for key, value in (config.hydra.sweeper.get("params") or {}).items()]
    overrides = OverridesParser.create().parse_overrides([*params, *typed_overrides(config.hydra)])
    for batch in BasicSweeper.split_arguments(overrides, None):
        for job in batch:
            yield compose(config.hydra.job.config_name, overrides=job), job
