"""Hydra's own launchers run a sweep's jobs in parallel, each job one child of one parent run."""

from __future__ import annotations

import pytest

from dataeff.launch import slot_devices
from tests.conftest import FAST, parent_and_children, run_cli

# what the launchers and sweepers do with jobs, not the jobs' scores: two test batches, not the whole
# test split (~5 s a job)
SHORT = [*FAST, "trainer.max_steps=4", "trainer.val_check_interval=2", "trainer.limit_val_batches=1",
         "trainer.limit_test_batches=2"]


@pytest.mark.slow
def test_joblib_runs_two_jobs_at_a_time_with_a_core_each(workdir):
    result = run_cli("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=1,2", *SHORT,
                     cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    parent, children = parent_and_children(workdir)
    assert parent.info.status == "FINISHED" and len(children) == 2
    assert {c.info.status for c in children} == {"FINISHED"}
    assert sorted(c.data.tags["seed"] for c in children) == ["1", "2"]
    spans = sorted((c.info.start_time, c.info.end_time) for c in children)
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))  # they overlapped
    assert "2 jobs at once: 1 CPU threads each" in result.stdout + result.stderr


@pytest.mark.system
@pytest.mark.slow
def test_submitit_local_runs_the_sweep_as_child_runs_each_a_ddp_job_of_two_tasks(workdir):
    # one sweep for both claims: a submitit sweep is a parent with its children, and a job of two
    # tasks is one DDP run (each submitit process costs seconds of imports on 2 cores)
    result = run_cli("-m", "hydra/launcher=submitit_local", "hydra.launcher.tasks_per_node=2",
                     "trainer=ddp_sim", "seed=1,2", *SHORT, cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    parent, children = parent_and_children(workdir)  # the second task of each job logs nothing
    assert parent.info.status == "FINISHED" and len(children) == 2
    assert {c.info.status for c in children} == {"FINISHED"}
    assert {c.data.params["trainer.devices"] for c in children} == {"2"}


@pytest.mark.system
@pytest.mark.slow
def test_ray_runs_the_sweep_as_child_runs(workdir):
    result = run_cli("-m", "hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2",
                     "+hydra.launcher.ray.init.include_dashboard=false", "seed=1,2", *SHORT, cwd=workdir,
                     RAY_AUTH_MODE="disabled")
    assert result.returncode == 0, result.stderr[-3000:]
    parent, children = parent_and_children(workdir)
    assert parent.info.status == "FINISHED" and len(children) == 2
    assert {c.info.status for c in children} == {"FINISHED"}


@pytest.mark.parametrize(("slot", "jobs", "gpus", "devices"), [
    (0, 2, 4, [0, 1]), (1, 2, 4, [2, 3]), (2, 4, 4, [2]), (3, 4, 2, [1]), (0, 3, 8, [0, 1])])
def test_each_parallel_job_gets_its_own_gpus(slot, jobs, gpus, devices):
    assert slot_devices(slot, jobs, gpus) == devices


def test_the_slurm_preset_runs_one_task_per_gpu():
    from hydra import compose, initialize_config_dir

    from dataeff.app import CONFIG_DIR

    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "hydra.launcher.gpus_per_node=4",
                                          "hydra.launcher.partition=gpu"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher") and launcher.partition == "gpu"
    assert launcher.gpus_per_node == launcher.tasks_per_node == 4  # a DDP rank per SLURM task
