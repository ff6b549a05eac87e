"""The stages before a job trains, run by the app (rank 0): chained pretraining and fetching.

Chained studies: jobs that need an MLM pretraining run the study defines (`init=task_adaptive`
fine-tunes from it, `augment=mlm` fills masked words with it). The first job that needs the run
trains it, in a subprocess, as `dataeff-train <overrides>` would; every later job, in this sweep or
the next, finds the FINISHED run by its key (a hash of the overrides) and reuses it, so one
command runs a whole study. The runs a job starts from are then fetched into the cache once.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path

from filelock import FileLock
from hydra import compose
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf, open_dict

from dataeff.checks import pretraining_overrides
from dataeff.errors import UserError
from dataeff.models.init import fetch_run_model
from dataeff.overrides import quote
from dataeff.subrun import LAUNCHERS

log = logging.getLogger(__name__)
KEY_TAG = "pretrain_key"


@dataclass
class Where:
    """Where the pretraining run goes: the study's MLflow experiment, store and folders."""

    study: str
    tracking_uri: str
    artifact_location: str | None
    root_dir: str
    log_dir: str
    cache_dir: str
    subruns: str = "process"  # the launcher that runs it (dataeff.subrun)

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


def pretraining_key(overrides: list[str]) -> str:
    return hashlib.sha1("\n".join(overrides).encode()).hexdigest()[:16]


def pretraining_run(overrides, where: Where) -> str:
    """The id of the FINISHED pretraining run these overrides describe, trained first if absent."""
    return stage_run(overrides, where, "pretraining")


# role -> the tag that finds its runs: a pretraining, a tuning trial, an active-learning round, an audit
KEY_TAGS = {"pretraining": KEY_TAG, "tuning": "tune_key", "al_round": "al_key", "audit": "audit_key"}


def stage_run(overrides, where: Where, role: str) -> str:
    """The id of the FINISHED run (a pretraining, a tuning trial) these overrides describe, trained
    first in its own process if absent; found again by a hash of the overrides."""
    overrides = [str(item) for item in overrides]
    key, tag = pretraining_key(overrides), KEY_TAGS[role]
    client = MlflowClient(where.tracking_uri)
    Path(where.cache_dir).mkdir(parents=True, exist_ok=True)
    # parallel jobs of a sweep (joblib launcher) wait for one run instead of each training it
    with FileLock(Path(where.cache_dir) / f"{role}-{key}.lock"):
        run_id = find_run(client, where.study, key, tag)
        if run_id is None:
            log.info("No finished %s run with key %s yet: training it (%s)", role, key, " ".join(overrides))
            launch(overrides, where, {tag: key, "role": role})
            run_id = find_run(client, where.study, key, tag)
        else:
            log.info("Reusing %s run %s (key %s)", role, run_id, key)
    if run_id is None:
        raise UserError(f"The {role} run (key {key}) ended without a FINISHED MLflow run; see its "
                        "output above.")
    return run_id


def find_run(client: MlflowClient, experiment_name: str, key: str, tag: str = KEY_TAG) -> str | None:
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
        raise UserError(f"The {tags.get('role', 'staged')} run failed (exit {code}); its error is printed "
                        "above. Run it alone to fix it: dataeff-train " + " ".join(overrides))


def needed_pretraining(cfg) -> list[str] | None:
    """The overrides of the MLM run this job's study describes (`init.pretrain`), when the job
    needs it: `init=task_adaptive`, or `augment=mlm` without a source of its own."""
    augmenter = OmegaConf.select(cfg, "augment.text.mlm")
    pretrains = cfg.init.get("kind") == "pretrain"
    if not (pretrains or (augmenter is not None and augmenter.source is None)):
        return None
    overrides = pretraining_overrides(cfg)
    if overrides is None:
        if pretrains:
            raise UserError(f"init={cfg.init.name} fine-tunes from an MLM run that it trains first, but "
                            "init.pretrain (the overrides of that run) is empty here: this study names no "
                            f"pretraining for {cfg.init.name}. Add it to the study (see "
                            "conf/experiment/transfer_curve.yaml, `pretraining`), or set "
                            "init.pretrain=[...].")
        return None
    smoke = cfg.trainer.get("fast_dev_run")  # a smoke test of the job smoke-tests its pretraining
    flag = str(smoke).lower() if isinstance(smoke, bool) else smoke
    return overrides + ([f"++trainer.fast_dev_run={flag}"] if smoke else [])


def run_pretraining_stage(cfg) -> None:
    """The stage before a job: the MLM run its study describes is found (or trained) and the job
    is pointed at it (`init=mlflow_run`, and the MLM augmenter's source), so nothing below the app
    trains or looks up runs while loading weights."""
    pretrain = needed_pretraining(cfg)
    if pretrain is None:
        return
    run_id = pretraining_run(pretrain, Where.of(cfg))
    if cfg.init.get("kind") == "pretrain":
        cfg.init.kind, cfg.init.source = "mlflow_run", run_id
    augmenter = OmegaConf.select(cfg, "augment.text.mlm")
    if augmenter is not None and augmenter.source is None:
        augmenter.source = run_id


def grid_jobs(config):
    """Each job of a grid sweep (Hydra's basic sweeper) as (its composed config, its overrides);
    nothing under other sweepers, whose jobs are not known in advance."""
    if not str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return
    params = [f"{key}={value}" for key, value in (config.hydra.sweeper.get("params") or {}).items()]
    overrides = OverridesParser.create().parse_overrides([*params, *config.hydra.overrides.task])
    for batch in BasicSweeper.split_arguments(overrides, None):
        for job in batch:
            yield compose(config.hydra.job.config_name, overrides=job), job


def pretrain_before_fanout(config, tracking_uri: str) -> None:
    """A sweep's stage before its jobs fan out: every MLM run its jobs need is trained (or found)
    here, once, so that parallel or remote jobs only look it up. Under sweepers other than the
    grid each job finds or trains it, under a lock."""
    needed: dict[tuple[str, ...], Where] = {}
    for cfg, _ in grid_jobs(config):
        pretrain = needed_pretraining(cfg)
        if pretrain is not None:
            needed.setdefault(tuple(pretrain), replace(Where.of(cfg), tracking_uri=tracking_uri))
    for pretrain, where in needed.items():
        log.info("Before the sweep's jobs start: the pretraining run they need")
        pretraining_run(list(pretrain), where)


def fetch_sources(cfg) -> None:
    """Rank 0 fetches the MLflow runs the job starts from (`init=mlflow_run`, the MLM augmenter's
    run) into the cache and points the config at those folders, so the other ranks (which read
    rank 0's resolved config) never talk to MLflow."""
    tracking_uri, cache_dir = cfg.logger.mlflow.tracking_uri, cfg.paths.cache_dir
    if cfg.init.get("kind") == "mlflow_run" and cfg.init.get("source"):
        run_id = str(cfg.init.source)
        with open_dict(cfg):
            cfg.init.kind, cfg.init.source_run_id = "huggingface", run_id
            cfg.init.source = str(fetch_run_model(run_id, tracking_uri, cache_dir))
    augmenter = OmegaConf.select(cfg, "augment.text.mlm")
    if augmenter is not None and augmenter.source and not Path(str(augmenter.source)).expanduser().exists():
        augmenter.source = str(fetch_run_model(str(augmenter.source), tracking_uri, cache_dir))
