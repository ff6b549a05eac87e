"""Fair tuning, a stage before a job trains (rank 0): each condition at each label budget gets the
hyperparameter value that scores best on its validation data, so that no condition wins a
comparison by the luck of a hand-picked learning rate.

`tune=lr` tries every value of `tune.values` for `tune.param` on the job's own condition and
budget, on one labelled subset (`tune.data_seed`), and keeps the best on `task.objective` (a
validation metric: test data is never looked at). The trials are runs of their own (tag
role=tuning), trained once per cell like a study's pretraining and reused by all its seeds and by
later sweeps; the job then trains with the chosen value, which it records as tags.
"""

from __future__ import annotations

import json
import logging

from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf, open_dict

from dataeff.errors import UserError
from dataeff.overrides import DRAW, RESTART, is_kind, keep_overrides, typed_overrides
from dataeff.runs.keys import recorded_objective
from dataeff.stages.subrun import Where, stage_run

log = logging.getLogger(__name__)


def resolve_tuning(cfg: DictConfig) -> None:
    """Tune this job's cell (when `tune` is set) and set the chosen value in `cfg` (which the other
    ranks read, rank 0's resolved config: they never tune)."""
    tune = cfg.get("tune")
    if not tune:
        return
    param, values = str(tune.param), list(tune["values"])
    if OmegaConf.select(cfg, param, default="<absent>") == "<absent>" or not values:
        raise UserError(f"tune.param={param} is not a setting of this job, or tune.values is empty; tune "
                        "a key the job has, e.g. tune.param=task.optimizer.lr tune.values=[1e-4,3e-4].")
    if cfg.trainer.get("fast_dev_run"):  # a smoke test smoke-tests one trial, which scores nothing
        values = values[:1]
    scores = {str(value): trial_score(cfg, param, value) for value in values}
    pick = max if cfg.task.objective_mode == "max" else min
    best = pick(values, key=lambda value: scores[str(value)])
    log.info("Tuned %s on validation (%s, data seed %s): %s; training with %s", param, cfg.task.objective,
             tune.data_seed, ", ".join(f"{v}: {s:.4f}" for v, s in scores.items()), best)
    OmegaConf.update(cfg, param, best)
    with open_dict(cfg):
        cfg.tags["tune.param"], cfg.tags["tune.value"] = param, str(best)
        cfg.tags["tune.scores"] = json.dumps(scores)
        cfg.tune = None


def trial_score(cfg: DictConfig, param: str, value) -> float:
    """The validation objective of one trial: the job's overrides, its cell's subset, one value."""
    overrides = [*cell_overrides(typed_overrides(), param),
                 f"{param}={value}", f"data.data_seed={cfg.tune.data_seed}", "~tune"]
    run_id = stage_run(overrides, Where.of(cfg), "tuning")
    score = recorded_objective(MlflowClient(cfg.logger.mlflow.tracking_uri).get_run(run_id))
    if score is None and cfg.trainer.get("fast_dev_run"):
        return float("nan")
    if score is None:
        raise UserError(f"The tuning run {run_id} ({param}={value}) recorded no {cfg.task.objective}; "
                        "tuning needs validation (trainer.limit_val_batches > 0).")
    return score


def cell_overrides(overrides: list[str], param: str) -> list[str]:
    """The job's overrides that make its cell (condition, budget, study), without what varies
    between its seeds or runs and without the tuned value itself."""
    return keep_overrides(overrides, lambda key: key != param
                          and not is_kind(key, (*RESTART, *DRAW, "tune", "hydra")))
