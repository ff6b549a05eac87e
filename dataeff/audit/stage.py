"""The audit as a stage before a study trains (`audit.before_study=true`): the study's data config
is audited once (a run found again by the hash of its overrides, like a pretraining), and a
leakage past `audit.fail_on_leakage` stops the study before anything trains."""

from __future__ import annotations

from dataclasses import replace

from dataeff.chain import Where, grid_jobs, stage_run
from dataeff.overrides import keep_overrides

AUDITED = ("data", "experiment", "audit", "study")  # the overrides that say what data is audited


def audit_overrides(overrides) -> list[str]:
    """The audit run that reads the same data as a job with these overrides."""
    kept = keep_overrides(overrides, lambda key: key.split(".")[0] in AUDITED or key == "paths.data_dir")
    return [*kept, "task=audit", "audit.before_study=false"]


def run_audit_stage(cfg, overrides) -> str | None:
    """The FINISHED audit run of this job's data (trained first if absent); its failure (leakage)
    stops the job with the audit's own message above."""
    if not cfg.audit.before_study or cfg.task.name == "audit":
        return None
    return stage_run(audit_overrides(overrides), Where.of(cfg), "audit")


def audit_before_fanout(config, tracking_uri: str) -> None:
    """A sweep's audit, before its jobs start: once per data config its jobs read."""
    needed: dict[tuple[str, ...], Where] = {}
    for cfg, job in grid_jobs(config):
        if cfg.audit.before_study and cfg.task.name != "audit":
            needed.setdefault(tuple(audit_overrides(job)), replace(Where.of(cfg), tracking_uri=tracking_uri))
    for overrides, where in needed.items():
        stage_run(list(overrides), where, "audit")
