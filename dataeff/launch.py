"""How a job runs under a launcher: its share of the machine when several jobs run on it at once
(Hydra's joblib launcher: 1/N of the cores each, and on a node with GPUs a slot of its own), its
ranks when submitit runs it as several tasks, and what Lightning's DDP launcher re-runs."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
from filelock import FileLock, Timeout
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from pytorch_lightning.utilities import rank_zero_only

from dataeff.overrides import typed_overrides

log = logging.getLogger(__name__)
# what Lightning's DDP launcher exports in the launching process
DDP_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def under_joblib() -> bool:
    """Whether this job runs in a worker of Hydra's joblib launcher."""
    if not HydraConfig.initialized():
        return False
    return "joblib" in str(HydraConfig.get().launcher.get("_target_", "")).lower()


def parallel_jobs() -> int:
    """How many jobs of this sweep run at once on this machine: joblib's n_jobs, else 1."""
    if not under_joblib():
        return 1
    n_jobs = HydraConfig.get().launcher.get("n_jobs") or 1
    return cores() if n_jobs < 0 else n_jobs  # joblib's -1: one job per core


@contextlib.contextmanager
def stderr_on_devnull() -> Iterator[None]:
    """File descriptor 2 on /dev/null meanwhile: what a process started now inherits as stderr."""
    sys.stderr.flush()
    saved, quiet = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(quiet, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(quiet)


_tracker_quiet = False  # loky's tracker is one per process: patched once


def quiet_loky_tracker() -> None:
    """Every launch of loky's resource tracker from this process (a joblib sweep's, or one of its
    workers', which launches its own once the sweep's is gone) with stderr on /dev/null: as a
    stopped sweep's workers exit, a tracker can print a KeyError traceback of its own (loky
    unregisters a semaphore twice). The trackers clean up as before; the user reads dataeff's
    lines alone."""
    from joblib.externals.loky.backend import resource_tracker  # joblib's launcher only

    global _tracker_quiet
    if _tracker_quiet:
        return
    tracker = resource_tracker._resource_tracker
    launch = tracker._launch

    def quiet_launch() -> None:
        with stderr_on_devnull():
            launch()

    tracker._launch, _tracker_quiet = quiet_launch, True


@contextlib.contextmanager
def machine_share(cfg: DictConfig) -> Iterator[None]:
    """Threads and GPUs for this job while it runs; its GPU slot is free again afterwards (joblib
    reuses its worker processes for later jobs)."""
    if under_joblib():
        quiet_loky_tracker()
    jobs = parallel_jobs()
    if jobs <= 1:
        yield
        return
    threads = max(1, cores() // jobs)
    torch.set_num_threads(threads)
    gpus = torch.cuda.device_count() if cfg.trainer.get("accelerator") in ("gpu", "cuda", "auto") else 0
    if not gpus:
        log.info("%d jobs at once: %d CPU threads each", jobs, threads)
        yield
        return
    with gpu_slot(Path(HydraConfig.get().sweep.dir), jobs) as slot:
        cfg.trainer.devices = slot_devices(slot, jobs, gpus)
        log.info("%d jobs at once: this one trains on GPU %s with %d CPU threads", jobs,
                 cfg.trainer.devices, threads)
        yield


def slot_devices(slot: int, jobs: int, gpus: int) -> list[int]:
    """The GPUs of a slot: an equal share when there are enough, else jobs share GPUs round-robin."""
    if gpus >= jobs:
        share = gpus // jobs
        return list(range(slot * share, (slot + 1) * share))
    return [slot % gpus]


@contextlib.contextmanager
def gpu_slot(sweep_dir: Path, jobs: int) -> Iterator[int]:
    """The first of `jobs` slots no other running job of this sweep holds (a file lock each)."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    for slot in range(jobs):
        lock = FileLock(sweep_dir / f".gpu-slot-{slot}.lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue
        try:
            yield slot
        finally:
            lock.release()
        return
    yield HydraConfig.get().job.num % jobs  # more jobs than slots: cannot happen under joblib


def submitit_tasks() -> None:
    """A job that submitit's local executor runs as several tasks (`hydra.launcher.tasks_per_node`)
    is one DDP training with a rank per task: each task exports torch.distributed's variables, so
    Lightning takes the tasks as processes started for it. (Under SLURM, Lightning's
    SLURMEnvironment reads the same from SLURM's variables.)"""
    tasks = int(os.environ.get("SUBMITIT_LOCAL_NTASKS", "1"))
    if os.environ.get("SUBMITIT_EXECUTOR") != "local" or tasks < 2:
        return
    from submitit.helpers import TorchDistributedEnvironment

    ranks = TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    rank_zero_only.rank = ranks.rank  # read by the app before Lightning sets it


@contextlib.contextmanager
def job_argv() -> Iterator[None]:
    """What Lightning's DDP launcher re-runs for the other ranks (`sys.argv`) is this job (they
    then read rank 0's resolved config, `dataeff.stages.resolved`). In a sweep, argv would be the whole
    sweep (`-m` and every list): it is this job's overrides alone while the job runs. And what one
    job's DDP leaves behind (its process group, the rank variables Lightning exports, which would
    make it believe the next job's ranks are started by someone else) ends with it: a sweep's jobs,
    and a job's sub-runs, can share a process."""
    multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    saved_argv, saved_env = sys.argv, {key: os.environ.get(key) for key in DDP_VARIABLES}
    own = typed_overrides() if multirun else saved_argv[1:]
    sys.argv = [saved_argv[0], *own]
    try:
        yield
    finally:
        sys.argv = saved_argv
        end_distributed(saved_env)  # the next job in this process (of a sweep, or a sub-run) starts clean


def end_distributed(saved_env: dict[str, str | None]) -> None:
    for key, value in saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
