"""The audit recipe (`dataeff-audit`, `dataeff-train task=audit`): what is wrong with a labelled
data set, before a study measures anything on it. The job's config resolved (checks, store, key),
its data read, every split audited in one MLflow run (dataeff.audit.run)."""

from __future__ import annotations

from omegaconf import DictConfig

from dataeff.audit.run import run_audit
from dataeff.building import build_data
from dataeff.recipes.ending import job_recipe
from dataeff.stages.fetch import fetch_sources
from dataeff.stages.resolve import resolve_rank_zero_job


@job_recipe
def run(cfg: DictConfig) -> float | None:
    """The audit's objective: the share of test examples also in training (leakage)."""
    job = resolve_rank_zero_job(cfg, stages=(fetch_sources,))  # an MLM augmenter's run, fetched
    if job is None:  # another rank: this workflow runs on rank 0
        return None
    if job.done is not None:
        return job.objective
    return run_audit(job.cfg, build_data(job.cfg), job.key)
