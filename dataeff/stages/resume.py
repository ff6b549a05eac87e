"""The resume stage (rank 0): a job started again in its own output folder (a SLURM job requeued
after preemption, the same hydra.run.dir) continues from the checkpoint its earlier attempt left."""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from dataeff.checkpoints import earlier_attempt

log = logging.getLogger(__name__)


def resume_earlier_attempt(cfg: DictConfig) -> None:
    earlier = earlier_attempt(cfg.paths.output_dir) if not cfg.get("ckpt_path") else None
    if earlier:
        cfg.ckpt_path = earlier
        log.info("This job's folder holds an earlier attempt: continuing from %s", cfg.ckpt_path)
