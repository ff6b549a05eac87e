"""A job's config, resolved once. Rank 0 turns the config a user asked for into the config that
runs: the settings checked, the store opened, the job's key taken (before any stage edits the
config), a job this sweep already FINISHED found, the audit gate passed, then the recipe's stages
in order (a study's pretraining run, the runs' weights fetched, a tuned hyperparameter, an earlier
attempt to continue); it writes the result to `<output dir>/resolved.yaml`. Every other rank of a
DDP job reads that file instead (dataeff.stages.resolved)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.utilities import rank_zero_only

from dataeff.checks import check_settings
from dataeff.overrides import typed_overrides
from dataeff.runs.keys import finished_job, job_key, recorded_objective
from dataeff.runs.naming import parent_run_id
from dataeff.runs.store import open_store
from dataeff.stages.audit_gate import resolve_audit_gate
from dataeff.stages.fetch import fetch_sources
from dataeff.stages.pretrain import resolve_pretraining
from dataeff.stages.resolved import read_resolved, write_resolved
from dataeff.stages.resume import resume_earlier_attempt
from dataeff.stages.tune import resolve_tuning

log = logging.getLogger(__name__)
Stage = Callable[[DictConfig], None]  # edits the config in place, on rank 0 alone
# a training job's stages, in order: each may need what the one before filled in
TRAINING_STAGES: tuple[Stage, ...] = (resolve_pretraining, fetch_sources, resolve_tuning,
                                      resume_earlier_attempt)


@dataclass
class Job:
    """The config a job runs, the key it is found again by, and, when this sweep FINISHED it
    already, that run (the job is then not run again)."""

    cfg: DictConfig
    key: str = ""
    done: Run | None = None
    rank_zero: bool = True

    @property
    def objective(self) -> float | None:
        return recorded_objective(self.done) if self.done is not None else None


def resolve_job(cfg: DictConfig, stages: Sequence[Stage] = TRAINING_STAGES) -> Job:
    """Rank 0: the job, resolved (and written for the other ranks); another rank: rank 0's."""
    if rank_zero_only.rank != 0:
        return Job(read_resolved(cfg.paths.output_dir, rank_zero_only.rank), rank_zero=False)
    check_settings(cfg)
    settle_validation(cfg.trainer)  # before the config is logged: it says what runs
    cfg.logger.mlflow.tracking_uri = open_store(cfg.logger.mlflow.tracking_uri)  # no credentials
    key = job_key(cfg)  # before the stages below fill in the config,
    OmegaConf.resolve(cfg.tags)  # and so are the tags: what the job was asked for (noise=0.1, ...)
    done = None if cfg.rerun else skipped_job(cfg.logger.mlflow.tracking_uri, key)
    if done is None:
        resolve_audit_gate(cfg, typed_overrides())
        for stage in stages:
            stage(cfg)
        write_resolved(cfg)
    return Job(cfg, key, done)


def resolve_rank_zero_job(cfg: DictConfig, stages: Sequence[Stage] = ()) -> Job | None:
    """For a workflow that runs on rank 0 alone (an audit; an active-learning loop, whose rounds
    start ranks of their own): rank 0's resolved job, None on the other ranks (nothing to do)."""
    return resolve_job(cfg, stages) if rank_zero_only.rank == 0 else None


def skipped_job(tracking_uri: str, key: str) -> Run | None:
    """In a continued sweep, the FINISHED run of this job (same config), which is not trained again."""
    parent = parent_run_id()
    done = finished_job(MlflowClient(tracking_uri), parent, key) if parent else None
    if done is not None:
        log.info("Skipped: this sweep already FINISHED this job as MLflow run %s (%s); rerun=true trains "
                 "it again.", done.info.run_id, done.info.run_name)
    return done


def settle_validation(trainer_cfg: DictConfig) -> None:
    """`trainer.val_check_interval` as users mean it, whatever the budget: a fraction is a share
    of each epoch, an integer a number of training batches across epochs (Lightning needs
    check_val_every_n_epoch set for the one, unset for the other). A steps budget shorter than
    the interval validates once, at its last step, so there is a best checkpoint to test."""
    interval, per_epoch = trainer_cfg.get("val_check_interval"), trainer_cfg.get("check_val_every_n_epoch")
    with open_dict(trainer_cfg):
        if isinstance(interval, float) and per_epoch is None:
            trainer_cfg.check_val_every_n_epoch = 1
        elif isinstance(interval, int) and per_epoch == 1:
            trainer_cfg.check_val_every_n_epoch = None
    steps = trainer_cfg.get("max_steps") or -1
    if not isinstance(interval, int) or trainer_cfg.check_val_every_n_epoch is not None or steps < 1:
        return
    batches = steps * (trainer_cfg.get("accumulate_grad_batches") or 1)
    if interval > batches:
        log.info("trainer.max_steps=%d ends before trainer.val_check_interval=%d: validating at the last "
                 "step instead", steps, interval)
        trainer_cfg.val_check_interval = batches
