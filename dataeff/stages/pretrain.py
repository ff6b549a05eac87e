"""The pretraining stage (rank 0): chained studies.

Jobs that need a pretraining run get it as a sub-run (dataeff.stages.subrun): the MLM run their study
defines (`init=task_adaptive` fine-tunes from it, `augment=mlm` fills masked words with it), or a
ViT pretrained on the job's own images (`vision/init=mim | denoise`). The first job that needs it
trains it; every later job, in this sweep or the next, finds the FINISHED run by its key and reuses
it, so one command runs a whole study.
"""

from __future__ import annotations

import logging

from omegaconf import OmegaConf

from dataeff.checks import pretraining_overrides
from dataeff.checks.command_line import nested_group_typed_as_value
from dataeff.errors import UserError
from dataeff.overrides import is_kind, keep_overrides, typed_overrides
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
    return overrides + smoke_test(cfg)


# what a ViT's pretraining shares with the job's command line: the images (the data config, its files
# and sizes) and the ViT (its preset and shape), but none of the labels: it reads every training
# image. A study (experiment=...) is not passed on: its other groups (fusion=...) do not fit task=mim;
# what its config sets for the images or the ViT beyond the presets goes in vision.init.pretrain.
IMAGES = ("data", "paths.data_dir", "vision")
LABELS = ("data.fraction", "data.shots", "data.data_seed", "data.label_noise", "data.noise_seed",
          "data.val_size", "data.label_column", "vision.init")


def needed_vision_pretraining(cfg, job_overrides) -> list[str] | None:
    """The overrides of the pretraining run of this job's ViT (`vision/init=mim | denoise |
    contrastive`): on the job's own images (or on `vision.init.data`, image-text pairs for
    contrastive) with its vision preset, then `vision.init.pretrain`; None when the job needs none
    (or builds no ViT: model.modality=text)."""
    init = OmegaConf.select(cfg, "vision.init")
    if isinstance(init, str):  # vision.init=mim in a sweep's grid, which the command line's check misses
        raise UserError(f"vision.init={init}: {nested_group_typed_as_value('vision.init', init)}")
    if init is None or init.kind != "pretrain" or OmegaConf.select(cfg, "model.modality") == "text":
        return None
    own_images = init.get("data") is None
    shares = IMAGES if own_images else ("vision",)
    # the job's values (not its groups: `own` names them), in one order whatever order they were
    # typed in, so every job that reads the same images finds the same run
    shared = keep_overrides(job_overrides, lambda key: is_kind(key, shares) and not is_kind(key, LABELS)
                            and key not in ("data", "vision"))
    settings = sorted({text.split("=", 1)[0]: text for text in shared}.values())
    own = [f"data={cfg.data.name if own_images else init.data}", f"vision={cfg.vision.name}",
           "vision/init=scratch"]
    return [*own, *settings, *(str(item) for item in init.pretrain)] + smoke_test(cfg)


def smoke_test(cfg) -> list[str]:
    """A smoke test of the job (trainer.fast_dev_run) smoke-tests its pretraining."""
    smoke = cfg.trainer.get("fast_dev_run")
    flag = str(smoke).lower() if isinstance(smoke, bool) else smoke
    return [f"++trainer.fast_dev_run={flag}"] if smoke else []


def resolve_pretraining(cfg) -> None:
    """The stage before a job: the pretraining runs it starts from are found (or trained) and the job
    is pointed at them (`init` and `vision.init` become mlflow_run, and the MLM augmenter's source),
    so nothing below the app trains or looks up runs while loading weights."""
    pretrain = needed_pretraining(cfg)
    if pretrain is not None:
        run_id = pretraining_run(pretrain, Where.of(cfg))
        if cfg.init.get("kind") == "pretrain":
            cfg.init.kind, cfg.init.source = "mlflow_run", run_id
        augmenter = OmegaConf.select(cfg, "augment.text.mlm")
        if augmenter is not None and augmenter.source is None:
            augmenter.source = run_id
    vision = needed_vision_pretraining(cfg, typed_overrides())
    if vision is not None:
        cfg.vision.init.kind, cfg.vision.init.source = "mlflow_run", pretraining_run(vision, Where.of(cfg))
