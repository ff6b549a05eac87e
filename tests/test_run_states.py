"""Honest run states: signals, kill -9 and resumes, as a user meets them on the command line."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
import torch

from dataeff.runs.stopping import catch_signals, restore_signals
from tests.conftest import FAST, run_app, runs, start_cli, store

pytestmark = pytest.mark.slow
LONG = [*FAST, "trainer.max_steps=2000", "trainer.val_check_interval=40", "trainer.log_every_n_steps=1"]


def last_step(workdir: Path, key: str = "train/loss") -> int:
    found = runs(workdir)
    if not found:
        return -1
    history = store(workdir).get_metric_history(found[0].info.run_id, key)
    return max((m.step for m in history), default=-1)


def wait_for(condition, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the job never got there"
        time.sleep(0.05)


def checkpoint_step(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


def frozen_past_its_checkpoint(pid: int, workdir: Path, last: Path) -> bool:
    """Stops the job (SIGSTOP) and leaves it stopped if it has logged steps past its last
    checkpoint; otherwise lets it go on. A job killed while running may have just saved a
    checkpoint at its last logged step, leaving the resume nothing to log twice."""
    process = psutil.Process(pid)
    process.suspend()
    try:
        if last_step(workdir) > checkpoint_step(last):
            return True
    except Exception:  # noqa: BLE001 - a checkpoint half written, or the store locked by the stopped job
        pass
    process.resume()
    time.sleep(0.1)
    return False


@pytest.mark.system
def test_kill_9_then_resume_is_one_finished_run_with_one_value_per_step(workdir):
    checkpoints = "trainer.val_check_interval=10"
    job = start_cli(*LONG, checkpoints, cwd=workdir)
    wait_for(lambda: last_step(workdir) >= 15)  # past the first checkpoint (step 10)
    [run] = runs(workdir)
    last = Path(run.data.tags["dataeff.output_dir"]) / "checkpoints" / "last.ckpt"
    wait_for(lambda: frozen_past_its_checkpoint(job.pid, workdir, last))
    job.send_signal(signal.SIGKILL)
    job.communicate()
    [run] = runs(workdir)
    assert run.info.status == "RUNNING"  # nobody could say otherwise
    assert last_step(workdir) > checkpoint_step(last)  # steps the resume will log again

    # the resume in this process (the same app, without another interpreter start); it ends 20
    # steps past the checkpoint, wherever the kill landed (a loaded machine lets the job run on)
    end = checkpoint_step(last) + 20
    assert run_app(*LONG, checkpoints, f"trainer.max_steps={end}", f"ckpt_path={last}") == 0
    [run] = runs(workdir)
    assert run.info.status == "FINISHED"
    assert run.data.tags["dataeff.attempts"] == "2"
    assert run.data.tags["dataeff.attempt2.previous_status"].startswith("RUNNING (its process died")
    client = store(workdir)
    for key in run.data.metrics:
        steps = Counter(m.step for m in client.get_metric_history(run.info.run_id, key))
        assert max(steps.values()) == 1, (key, [s for s, n in steps.items() if n > 1])
    assert last_step(workdir) == end - 1


@pytest.mark.system
def test_sigterm_exits_143_killed_and_the_same_job_started_again_continues_it(workdir):
    """What a SLURM job preempted (SIGTERM) and requeued meets: the same command in the same
    output folder continues the same run from the checkpoint the interrupt left."""
    job = [*LONG, "+tags.launch=first", f"hydra.run.dir={workdir / 'job'}"]
    started = start_cli(*job, cwd=workdir)
    wait_for(lambda: last_step(workdir) >= 10)
    started.send_signal(signal.SIGTERM)
    _, err = started.communicate(timeout=120)
    assert started.returncode == 143, err[-2000:]
    [run] = runs(workdir)
    assert run.info.status == "KILLED" and "dataeff.error" in run.data.tags
    interrupted = workdir / "job" / "checkpoints" / "interrupted.ckpt"
    saved_at = checkpoint_step(interrupted)  # the finished job will not keep its training state

    assert run_app(*job, f"trainer.max_steps={saved_at + 4}") == 0  # started again, in this process
    [resumed] = runs(workdir)
    tags = resumed.data.tags
    assert resumed.info.status == "FINISHED" and "dataeff.error" not in tags
    assert "+tags.launch=first" in tags["dataeff.overrides"]  # the launch command is kept
    assert tags["dataeff.attempt2.ckpt_path"] == str(interrupted)
    assert tags["dataeff.attempt2.previous_status"] == "KILLED"
    assert tags["dataeff.attempt2.previous_error"] == "Stopped by SIGTERM"
    assert last_step(workdir) == saved_at + 3  # it went on, not from step 0
    artifacts = {a.path for a in store(workdir).list_artifacts(resumed.info.run_id, "attempts/2")}
    assert artifacts == {"attempts/2/config.yaml"}


def test_mark_dead_fails_runs_whose_process_is_gone_and_leaves_live_ones(workdir, capsys):
    import os
    import socket
    import subprocess

    from dataeff.runs.cli import main as store_main

    client = store(workdir)
    experiment = client.create_experiment("mlm")
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs
    here = socket.gethostname()
    dead = client.create_run(experiment, tags={"dataeff.host": here, "dataeff.pid": str(gone.pid),
                                               "dataeff.output_dir": "/runs/a"})
    live = client.create_run(experiment, tags={"dataeff.host": here, "dataeff.pid": str(os.getppid())})
    silent = client.create_run(experiment, tags={"dataeff.host": "elsewhere", "dataeff.pid": "1",
                                                 "dataeff.heartbeat": str(int(time.time()) - 7200)})
    assert store_main(["--tracking-uri", f"sqlite:///{workdir}/mlflow.db", "mark-dead"]) == 0
    status = {run: client.get_run(run.info.run_id).info.status for run in (dead, live, silent)}
    assert [status[dead], status[live], status[silent]] == ["FAILED", "RUNNING", "FAILED"]
    assert "ckpt_path=/runs/a/checkpoints/last.ckpt" in client.get_run(dead.info.run_id).data.tags[
        "dataeff.error"]
    assert dead.info.run_id in capsys.readouterr().out


def children_training(workdir: Path, count: int) -> bool:
    """`count` child runs are RUNNING and each has logged a few steps."""
    found = [run for run in runs(workdir) if "mlflow.parentRunId" in run.data.tags]
    client = store(workdir)
    return len(found) == count and all(
        run.info.status == "RUNNING" and len(client.get_metric_history(run.info.run_id, "train/loss")) >= 3
        for run in found)


@pytest.mark.system
def test_a_signal_to_a_sweep_stops_its_workers_and_ends_every_run_killed(workdir):
    """Before, SIGTERM to a joblib sweep exited at once: its parent run stayed RUNNING and its
    workers trained on for minutes. (The same holds under submitit's local jobs and Ray: every
    process the sweep started is stopped; checked by hand, a minute each.)"""
    sig = signal.SIGTERM
    started = start_cli("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=1,2", *LONG,
                        cwd=workdir)
    jobs = 2  # both at once, in joblib's two workers
    wait_for(lambda: children_training(workdir, jobs))
    workers = psutil.Process(started.pid).children(recursive=True)
    started.send_signal(sig)
    _, err = started.communicate(timeout=180)
    assert started.returncode == 128 + sig, err[-3000:]
    assert "Traceback" not in err
    every = runs(workdir)
    [parent] = [run for run in every if "mlflow.parentRunId" not in run.data.tags]
    children = [run for run in every if run is not parent]
    assert parent.info.status == "KILLED"
    assert [run.info.status for run in children] == ["KILLED"] * jobs
    assert all(run.data.tags["dataeff.error"].startswith("Stopped by") for run in children)
    time.sleep(1)
    assert not [worker.pid for worker in workers if worker.is_running() and worker.status() != "zombie"]


@pytest.mark.system
def test_sighup_when_the_terminal_closes_ends_the_run_killed(workdir):
    """Closing the terminal sends SIGHUP, whose default killed the job and left its run RUNNING."""
    started = start_cli(*LONG, cwd=workdir)
    wait_for(lambda: last_step(workdir) >= 5)
    started.send_signal(signal.SIGHUP)
    _, err = started.communicate(timeout=120)
    assert started.returncode == 129, err[-2000:]
    [run] = runs(workdir)
    assert run.info.status == "KILLED" and run.data.tags["dataeff.error"] == "Stopped by SIGHUP"


def test_sigterm_is_caught_even_where_a_parent_ignored_it_but_an_ignored_sighup_stays_ignored():
    """CI ran the suite with SIGTERM and SIGHUP ignored: the job skipped SIGTERM, Lightning's own handler
    stopped it, and it exited 130. SIGTERM is how schedulers stop jobs; nohup's SIGHUP is the user's."""
    before = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        def handler(signum, frame):
            pass

        replaced = catch_signals(handler)
        assert signal.getsignal(signal.SIGTERM) is handler
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
        restore_signals(replaced)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        restore_signals(before)
