"""Faults under load, at size: a sweep through a team's store survives each, nothing lost.

    make bench-faults                                  # the three faults below (~15 min on 2 cores)
    python experiments/bench/faults.py --jobs 8 --steps 300 --faults server-killed

Each fault hits a sweep of the default tiny MLM (`train/loss` logged every step) that logs to an
`mlflow server` on PostgreSQL, once every running job has logged 20 steps:

- `postgres-restart`: N jobs at once (joblib); PostgreSQL stopped, started again 5 s later;
- `server-killed`: N jobs at once (joblib); the server killed (SIGKILL, its workers too) and
  started again on its port 20 s later;
- `ray-node-killed`: a Ray cluster of two nodes on this machine (`ray start --head`, then
  `ray start --address`, a CPU each), the sweep sent to it (`hydra/launcher=ray`, one CPU and up
  to 2 retries a job); the second node killed (SIGKILL to its raylet and its workers) once a job
  it runs has logged past its first checkpoint. Ray runs that job again on the head, where it
  continues from its checkpoint as attempt 2 of its MLflow run.

Printed per fault: runs FINISHED, values written (jobs x steps of train/loss) and read back,
duplicated steps, runs resumed (attempt 2 or later), the sweep's exit status and wall time.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from mlflow.tracking import MlflowClient
from store import TRAIN, census, free_port, scratch_postgres, start_server

from dataeff.runs.database import with_driver
from dataeff.runs.local_postgres import LocalPostgres
from dataeff.runs.tags import PID_TAG

FAULTS = ("postgres-restart", "server-killed", "ray-node-killed")
RAY = str(Path(sys.executable).with_name("ray"))
STEPS_BEFORE = 20  # every running job has logged this many steps when the fault comes
CHECKPOINT_EVERY = 50


def start_sweep(folder: Path, uri: str, jobs: int, steps: int, launcher: list[str]) -> subprocess.Popen:
    command = [TRAIN, "-m", f"seed={','.join(map(str, range(jobs)))}", *launcher,
               f"trainer.max_steps={steps}", "trainer.log_every_n_steps=1",
               f"trainer.val_check_interval={CHECKPOINT_EVERY}", "trainer.limit_val_batches=2",
               "trainer.limit_test_batches=2", "trainer.enable_progress_bar=false",
               "trainer.enable_model_summary=false"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1", "DATAEFF_ROOT": str(folder)}
    return subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def job_runs(client: MlflowClient) -> list:
    experiments = [e.experiment_id for e in client.search_experiments() if e.name == "mlm"]
    found = client.search_runs(experiments) if experiments else []
    return [run for run in found if "seed" in run.data.tags and run.info.status == "RUNNING"]


def steps_of(client: MlflowClient, run) -> int:
    return len(client.get_metric_history(run.info.run_id, "train/loss"))


def wait_for(ready: Callable[[], bool], sweep: subprocess.Popen, what: str) -> None:
    while not ready():
        if sweep.poll() is not None:
            raise RuntimeError(f"the sweep ended before {what}: {sweep.stderr.read()[-2000:]}")
        time.sleep(1)


def every_job_logging(client: MlflowClient, jobs: int) -> Callable[[], bool]:
    def ready() -> bool:
        running = job_runs(client)
        return len(running) == jobs and all(steps_of(client, run) >= STEPS_BEFORE for run in running)
    return ready


class TeamStore:
    """An `mlflow server` on a fresh PostgreSQL database, that can be killed and started again."""

    def __init__(self, postgres: LocalPostgres, folder: Path):
        database = f"faults_{folder.name.replace('-', '_')}"
        postgres.create_database(database)
        self.backend = with_driver(postgres.uri(database, with_password=False))
        self.folder, self.port = folder, free_port()
        self.env = {**os.environ, "PGPASSWORD": postgres.password}
        self.server, self.uri = start_server(self.backend, folder, self.env, self.port)

    def kill(self) -> None:
        os.killpg(self.server.pid, signal.SIGKILL)
        self.server.wait(timeout=60)

    def start(self) -> None:
        self.server, _ = start_server(self.backend, self.folder, self.env, self.port)

    def stop(self) -> None:
        os.killpg(self.server.pid, signal.SIGTERM)
        self.server.wait(timeout=60)


def outage(store: TeamStore, postgres: LocalPostgres, folder: Path, jobs: int, steps: int, fault: str):
    """N jobs at once (joblib) through the store, which goes down once they all log, and comes back."""
    down, up, seconds = {"postgres-restart": (postgres.stop, postgres.start, 5),
                         "server-killed": (store.kill, store.start, 20)}[fault]
    joblib = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}"]
    sweep = start_sweep(folder, store.uri, jobs, steps, joblib)
    wait_for(every_job_logging(MlflowClient(store.uri), jobs), sweep, "every job logged")
    down()
    time.sleep(seconds)
    up()
    return ended(sweep)


class RayCluster:
    """A head and a second node on this machine, a CPU each, started as a user starts them."""

    def __init__(self):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {**os.environ, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1"}
        common = ["--block", "--num-cpus=1", "--disable-usage-stats", "--object-store-memory=100000000"]
        self.head = self._node("--head", f"--port={self.port}", "--include-dashboard=false", *common)
        while not answers(self.port):  # the head's GCS first
            time.sleep(1)
        self.second = self._node(f"--address={self.address}", *common)

    def _node(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([RAY, "start", *args], env=self.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)

    def processes_of_second(self) -> list[psutil.Process]:
        node = psutil.Process(self.second.pid)
        return [node, *node.children(recursive=True)]

    def kill_second(self) -> None:
        """The second node gone at once, as a machine that loses power: its raylet and workers."""
        for process in self.processes_of_second():
            process.kill()

    def stop(self) -> None:
        subprocess.run([RAY, "stop", "--force"], env=self.env, capture_output=True)
        for node in (self.head, self.second):
            node.wait(timeout=60)


def ray_node_killed(store: TeamStore, folder: Path, jobs: int, steps: int):
    cluster = RayCluster()
    launcher = ["hydra/launcher=ray", f"+hydra.launcher.ray.init.address={cluster.address}",
                "+hydra.launcher.ray.remote.num_cpus=1", "+hydra.launcher.ray.remote.max_retries=2",
                # a Ray task runs with its node's environment: the job's store and root go with the job
                f"+hydra.launcher.ray.init.runtime_env={{env_vars:{{MLFLOW_TRACKING_URI:'{store.uri}',"
                f"DATAEFF_ROOT:'{folder}',OMP_NUM_THREADS:'1'}}}}"]
    try:
        sweep = start_sweep(folder, store.uri, jobs, steps, launcher)
        client = MlflowClient(store.uri)

        def on_second_node_past_checkpoint() -> bool:
            pids = {str(process.pid) for process in cluster.processes_of_second()}
            past = CHECKPOINT_EVERY + STEPS_BEFORE
            return any(run.data.tags.get(PID_TAG) in pids and steps_of(client, run) >= past
                       for run in job_runs(client))

        wait_for(on_second_node_past_checkpoint, sweep, "a job on the second node passed its checkpoint")
        cluster.kill_second()
        return ended(sweep)
    finally:
        cluster.stop()


def answers(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def ended(sweep: subprocess.Popen) -> tuple[int, str]:
    """The sweep's exit status and the end of its stderr, once it has ended."""
    _, err = sweep.communicate(timeout=3600)
    return sweep.returncode, err[-3000:]


def measure(fault: str, postgres: LocalPostgres, folder: Path, jobs: int, steps: int) -> dict:
    folder.mkdir(parents=True)
    store = TeamStore(postgres, folder)
    start = time.perf_counter()
    try:
        code, err = (ray_node_killed(store, folder, jobs, steps) if fault == "ray-node-killed"
                     else outage(store, postgres, folder, jobs, steps, fault))
        wall = time.perf_counter() - start
        counts = census(store.uri, jobs, steps)
    finally:
        store.stop()
    if code:
        print(err, file=sys.stderr)
    return {**counts, "wall": wall, "exit": code}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8, help="jobs at once under joblib (Ray: 2, a node each)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--faults", nargs="+", default=list(FAULTS), choices=FAULTS)
    args = parser.parse_args()
    scratch, postgres = scratch_postgres("dataeff-bench-faults-")
    print(f"{os.cpu_count()} CPUs, {args.steps} steps a job, train/loss logged every step, a checkpoint "
          f"every {CHECKPOINT_EVERY}; the fault once every running job has logged {STEPS_BEFORE} steps")
    print(f"{'fault':18} {'jobs':>4} {'finished':>8} {'written':>7} {'read':>7} {'dup':>4} {'resumed':>7} "
          f"{'exit':>4} {'wall s':>7}")
    try:
        for fault in args.faults:
            jobs = 2 if fault == "ray-node-killed" else args.jobs
            row = measure(fault, postgres, scratch / fault, jobs, args.steps)
            print(f"{fault:18} {jobs:4d} {row['finished']:5d}/{jobs:<2d} {row['written']:7d} "
                  f"{row['read']:7d} {row['duplicated']:4d} {row['resumed']:7d} {row['exit']:4d} "
                  f"{row['wall']:7.1f}", flush=True)
    finally:
        postgres.stop()


if __name__ == "__main__":
    main()
