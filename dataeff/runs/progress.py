"""Where a sweep stands: after each job, `job i of N done, elapsed, about so much left`.

Counted from the store (the parent run's children), not from the process, so the line is the same
whichever launcher ran the job (in the main process or a joblib/submitit worker)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from omegaconf import DictConfig, OmegaConf

from dataeff.overrides import typed_overrides
from dataeff.runs.keys import latest_per_job
from dataeff.runs.tags import SWEEP_SINCE_TAG, SWEEP_SIZE_TAG

ENDED = ("FINISHED", "FAILED", "KILLED")


def sweep_size(config: DictConfig) -> int | None:
    """How many jobs the sweep will run, from the config on_multirun_start gets (a job's own config
    holds its overrides only); None when it cannot be told."""
    sweeper = config.hydra.sweeper
    try:
        if sweeper.get("n_trials") is not None:  # Optuna: a fixed number of trials
            return int(sweeper.n_trials)
        if not str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
            return None  # another sweeper: its own notion of a job count
        return len(BasicSweeper.split_arguments(_overrides(config), None)[0])
    except Exception:  # e.g. an interval sweep, which the basic sweeper refuses anyway
        return None


def _overrides(config: DictConfig) -> list:
    """The grid as BasicSweeper.sweep parses it: its params first, then the command line."""
    params = config.hydra.sweeper.get("params")
    grid = OmegaConf.to_container(params, resolve=False) if params else {}
    arguments = [f"{key}={value}" for key, value in grid.items()]
    arguments += typed_overrides(config.hydra)
    # glob(...) sweeps list a config group's options: only a config loader knows them
    loader = GlobalHydra.instance().config_loader() if GlobalHydra.instance().is_initialized() else None
    return OverridesParser.create(config_loader=loader).parse_overrides(arguments)


@dataclass
class Progress:
    done: int  # jobs that need no more work: ended in this attempt, or FINISHED in an earlier one
    failed: int
    total: int | None
    elapsed_s: float  # since this attempt of the sweep began
    ended_now: int  # jobs that ended during this attempt: the only ones that took this attempt's time

    @property
    def left_s(self) -> float | None:
        remaining = None if self.total is None else self.total - self.done
        return time_left(self.elapsed_s, self.ended_now, remaining)

    def text(self) -> str:
        line = f"job {self.done}" + (f" of {self.total}" if self.total else "") + " done"
        if self.failed:
            line += f" ({self.failed} failed)"
        line += f", {duration(self.elapsed_s)} elapsed"
        left = self.left_s
        if left is not None and left > 0:
            line += f", about {duration(left)} left"
        return line


def time_left(elapsed_s: float, ended_now: int, remaining: int | None) -> float | None:
    """The rate of this attempt's jobs times what remains. Jobs skipped as already FINISHED took
    no time, so they are left out of the rate; with parallel jobs, wall time already divides."""
    if remaining is None or ended_now <= 0:
        return None
    return elapsed_s / ended_now * max(remaining, 0)


def duration(seconds: float) -> str:
    """`42 s`, `12 min`, `1 h 5 min`: the precision an estimate deserves."""
    if round(seconds) < 60:
        return f"{max(round(seconds), 0)} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def sweep_progress(client: MlflowClient, parent_id: str, now_s: float | None = None) -> Progress:
    """Count the parent's children in the store (the newest run of each job, so a retried job
    counts once)."""
    parent = client.get_run(parent_id)
    tags = parent.data.tags
    since_ms = int(tags.get(SWEEP_SINCE_TAG, parent.info.start_time))
    children = latest_per_job(client.search_runs(
        [parent.info.experiment_id], f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent_id}'", max_results=50000))
    now = [c for c in children if c.info.status in ENDED and (c.info.end_time or 0) >= since_ms]
    # an earlier attempt's FINISHED job is skipped now, one that failed is trained again (one whose
    # config was edited since is trained again too, but counts as done until its new run starts)
    earlier = [c for c in children if c.info.status == "FINISHED" and (c.info.end_time or 0) < since_ms]
    total = int(tags[SWEEP_SIZE_TAG]) if tags.get(SWEEP_SIZE_TAG, "").isdigit() else None
    elapsed = (now_s if now_s is not None else time.time()) - since_ms / 1000
    return Progress(done=len(now) + len(earlier), failed=sum(c.info.status != "FINISHED" for c in now),
                    total=total, elapsed_s=max(elapsed, 0.0), ended_now=len(now))


def start_tags(config: DictConfig) -> dict[str, str]:
    """What the parent run is given as an attempt of the sweep begins."""
    size = sweep_size(config)
    tags = {SWEEP_SINCE_TAG: str(int(time.time() * 1000))}
    return {**tags, SWEEP_SIZE_TAG: str(size)} if size is not None else tags
