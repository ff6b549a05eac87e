"""The audit as a stage before a job trains: with `audit.before_study=true` the job's data config is
audited once (a run found again by the hash of its overrides, like a pretraining) and a leakage
past `audit.fail_on_leakage` stops the study before anything trains; with `audit.train_on=cleaned`
the job then trains on the training file that audit cleaned (duplicates, leaked rows and likely
label errors taken out), a condition of a study beside the data as given."""

from __future__ import annotations

from pathlib import Path

from omegaconf import open_dict

from dataeff.errors import UserError
from dataeff.overrides import DATA, is_kind, keep_overrides
from dataeff.runs.artifacts import fetch_artifact
from dataeff.stages.subrun import Where, stage_run

CLEAN_FOLDER = "clean"  # the audit run's artifact folder of cleaned files (audit.train_on=cleaned)


def audit_overrides(cfg, overrides) -> list[str]:
    """The audit run that reads the same data as a job with these overrides (`cfg`, its config) and
    writes the cleaned files beside its own output (so one audit serves the jobs that train on
    them). Without label noise the noise seed changes nothing read, so it does not make another."""
    unread = {"audit.train_on"} | ({"data.noise_seed"} if not cfg.data.get("label_noise") else set())
    kept = keep_overrides(overrides, lambda key: (is_kind(key, DATA) or key == "paths.data_dir")
                          and key not in unread)
    return [*kept, "task=audit", "audit.before_study=false",
            f"audit.write_clean=${{paths.output_dir}}/{CLEAN_FOLDER}"]


def needs_audit(cfg) -> bool:
    return cfg.task.name != "audit" and (cfg.audit.before_study or trains_on_cleaned(cfg))


def trains_on_cleaned(cfg) -> bool:
    train_on = cfg.audit.get("train_on", "given")
    if train_on not in ("given", "cleaned"):
        raise UserError(f"audit.train_on={train_on} is neither given (the data as it is) nor cleaned (the "
                        "training file the audit cleaned).")
    return train_on == "cleaned"


def resolve_audit_gate(cfg, overrides) -> None:
    """Rank 0's audit of this job's data (run first if absent; its failure, a leakage, stops the job
    with the audit's own message above). With `audit.train_on=cleaned` the job (and, through rank
    0's resolved config, every rank) is pointed at the cleaned training file."""
    if not needs_audit(cfg):
        return
    audit_run = stage_run(audit_overrides(cfg, overrides), Where.of(cfg), "audit")
    if not trains_on_cleaned(cfg):
        return
    path = fetch_clean_train(audit_run, cfg.logger.mlflow.tracking_uri, cfg.paths.cache_dir)
    with open_dict(cfg):
        cfg.data.train = {"_target_": "dataeff.data.sources.TextFile", "path": str(path), "format": "jsonl"}
        cfg.data.label_noise = 0.0  # the cleaned file holds the labels the audit read, noise included
        cfg.tags["audit_run"] = audit_run


def fetch_clean_train(run_id: str, tracking_uri: str, cache_dir: str) -> Path:
    """The audit run's cleaned training file, downloaded once into the cache (any store: the audit
    may have run on another machine of the cluster)."""
    folder = Path(cache_dir) / "audits" / run_id
    return fetch_artifact(run_id, f"{CLEAN_FOLDER}/train.jsonl", tracking_uri, folder)
