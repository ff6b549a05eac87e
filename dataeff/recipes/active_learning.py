"""The active-learning recipe (`al=<strategy>` with task=classify): a loop run whose rounds are
classify jobs of their own (sub-runs), each on the examples labelled so far. The job's config
resolved (checks, store, key, the audit gate), the pool read, then the loop (dataeff.active.rounds)."""

from __future__ import annotations

from omegaconf import DictConfig

from dataeff.active.rounds import run_active_learning
from dataeff.building import build_data
from dataeff.recipes.ending import job_recipe
from dataeff.stages.fetch import fetch_sources
from dataeff.stages.resolve import resolve_rank_zero_job


@job_recipe
def run(cfg: DictConfig) -> float | None:
    """The last round's objective."""
    job = resolve_rank_zero_job(cfg, stages=(fetch_sources,))  # an MLM augmenter's run, fetched
    if job is None:  # another rank: this workflow runs on rank 0
        return None
    if job.done is not None:
        return job.objective
    return run_active_learning(job.cfg, build_data(job.cfg), job.key)
