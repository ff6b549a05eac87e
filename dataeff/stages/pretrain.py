"""The pretraining stage (rank 0): chained studies.

Jobs that need an MLM pretraining run their study defines (`init=task_adaptive` fine-tunes from it,
`augment=mlm` fills masked words with it) get it as a sub-run (dataeff.stages.subrun): the first
job that needs it trains it; every later job, in this sweep or the next, finds the FINISHED run
by its key and reuses it, so one command runs a whole study.
"""

from __future__ import annotations

import logging

from omegaconf import OmegaConf

from dataeff.checks import pretraining_overrides
from dataeff.errors import UserError
from dataeff.stages.subrun import Where, stage_run

log = logging.getLogger(__name__)


def pretraining_run(overrides, where: Where) -> str:
    """The id of the FINISHED pretraining run these overrides describe, trained first if absent."""
    return stage_run(overrides, where, "pretraining")


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


def resolve_pretraining(cfg) -> None:
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
