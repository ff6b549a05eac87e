"""A grid sweep's shared sub-runs, run once before its jobs fan out: the leakage gate's audit of
each data config its jobs read (`audit.before_study`; a leak stops the study before anything
trains), then each pretraining run its jobs start from. Parallel or remote jobs then only look them
up. Under sweepers other than the grid each job finds or runs them itself, under a lock (subrun.py);
an audit that only cleans is each job's own stage."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace

from omegaconf import DictConfig

from dataeff.stages.audit_gate import audit_overrides
from dataeff.stages.pretrain import needed_pretraining, needed_vision_pretraining
from dataeff.stages.subrun import Where, grid_jobs, stage_run

log = logging.getLogger(__name__)
ORDER = ("audit", "pretraining")  # the gate first: a leaky study trains nothing


def before_fanout(config: DictConfig, tracking_uri: str) -> None:
    needed: dict[tuple[str, tuple[str, ...]], Where] = {}
    for cfg, job in grid_jobs(config):
        where = replace(Where.of(cfg), tracking_uri=tracking_uri)
        for role, overrides in shared_subruns(cfg, job):
            needed.setdefault((role, tuple(overrides)), where)
    for (role, overrides), where in sorted(needed.items(), key=lambda item: ORDER.index(item[0][0])):
        log.info("Before the sweep's jobs start: the %s run they need", role)
        stage_run(list(overrides), where, role)


def shared_subruns(cfg: DictConfig, job: list[str]) -> Iterator[tuple[str, list[str]]]:
    """(role, overrides) of each sub-run this job of the grid shares with others."""
    if cfg.audit.before_study and cfg.task.name != "audit":
        yield "audit", audit_overrides(cfg, job)
    for pretrain in (needed_pretraining(cfg), needed_vision_pretraining(cfg, job)):
        if pretrain is not None:
            yield "pretraining", pretrain
