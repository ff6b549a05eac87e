"""The tracking path under load: N jobs at once logging every step, into four stores.

    make bench-store                                   # 4, 8 and 16 jobs x 4 stores (~20 min)
    python experiments/bench/store.py --jobs 4 --steps 40

Stores: `sqlite` (the local file every job opens), `server-sqlite` (an `mlflow server` on a SQLite
file), `server-postgres` (an `mlflow server` on PostgreSQL), `postgres` (the jobs straight to
PostgreSQL). Each is new for every size. A sweep of N jobs (joblib launcher, N at once, one
thread each) of the default tiny MLM, `--steps` steps, `train/loss` logged every step; meanwhile
this process logs one metric value at a time into its own run of the same store and times each
call (the latency a job's logging call meets under that load). Printed per store and size:

- runs FINISHED of N, values written (N x steps of train/loss) and read back, duplicated steps;
- writes/s: every metric value the jobs logged, over the sweep's wall time;
- overhead/step: (the sweep's wall time - the same sweep logging train/loss once every 50 steps
  to a local SQLite file) / steps, the time a user pays per step for tracking under that load;
- p50 / p99 of a logging call under the load, in ms.

PostgreSQL: Debian's package (make postgres); the cluster lives in a scratch folder. Run it on a
quiet machine: nothing else may share the cores while it times.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from mlflow.tracking import MlflowClient

from dataeff.runs.database import with_driver
from dataeff.runs.local_postgres import LocalPostgres
from dataeff.runs.store import open_store
from dataeff.runs.tags import ATTEMPTS_TAG

STORES = ("sqlite", "server-sqlite", "server-postgres", "postgres")
MLFLOW = str(Path(sys.executable).with_name("mlflow"))
TRAIN = str(Path(sys.executable).with_name("dataeff-train"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(backend: str, folder: Path, env: dict,
                 port: int | None = None) -> tuple[subprocess.Popen, str]:
    port = port or free_port()
    server = subprocess.Popen([MLFLOW, "server", "--backend-store-uri", backend, "--artifacts-destination",
                               str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            MlflowClient(url).search_experiments(max_results=1)
            return server, url
        except Exception:  # not up yet
            time.sleep(0.5)
    raise RuntimeError(f"mlflow server on {backend} did not start")


class Prober(threading.Thread):
    """Logs one metric value at a time into a run of its own, timing each call, until stopped."""

    def __init__(self, uri: str):
        super().__init__(daemon=True)
        self.client = MlflowClient(uri)
        experiment = self.client.create_experiment(f"probe-{time.time_ns()}")
        self.run_id = self.client.create_run(experiment).info.run_id
        self.latencies: list[float] = []
        self.failed = 0  # calls the store refused or dropped (their time counts too)
        self.done = threading.Event()

    def run(self) -> None:
        step = 0
        while not self.done.is_set():
            start = time.perf_counter()
            try:
                self.client.log_metric(self.run_id, "probe", float(step), step=step)
            except Exception:  # a locked or lost store: a failed call, timed like the rest
                self.failed += 1
            self.latencies.append(time.perf_counter() - start)
            step += 1
            time.sleep(0.05)


def sweep(folder: Path, uri: str, jobs: int, steps: int, every: int = 1) -> tuple[float, int]:
    command = [TRAIN, "-m", f"seed={','.join(map(str, range(jobs)))}", "hydra/launcher=joblib",
               f"hydra.launcher.n_jobs={jobs}", f"trainer.max_steps={steps}", f"trainer.log_every_n_steps={every}",
               f"trainer.val_check_interval={steps}", "trainer.limit_val_batches=2", "trainer.limit_test_batches=2",
               "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1", "DATAEFF_ROOT": str(folder)}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    return time.perf_counter() - start, done.returncode


def census(uri: str, jobs: int, steps: int) -> dict:
    """What the store holds of the sweep's job runs."""
    client = MlflowClient(uri)
    [experiment] = [e for e in client.search_experiments() if e.name == "mlm"]
    found = [r for r in client.search_runs([experiment.experiment_id]) if "seed" in r.data.tags]
    values, duplicated, every_metric = 0, 0, 0
    for run in found:
        history = client.get_metric_history(run.info.run_id, "train/loss")
        values += len(history)
        duplicated += sum(n - 1 for n in Counter(m.step for m in history).values())
        every_metric += sum(len(client.get_metric_history(run.info.run_id, key)) for key in run.data.metrics)
    return {"finished": sum(r.info.status == "FINISHED" for r in found), "written": jobs * steps,
            "read": values, "duplicated": duplicated, "all_values": every_metric,
            "resumed": sum(int(r.data.tags.get(ATTEMPTS_TAG, "1")) > 1 for r in found)}


def measure(store: str, folder: Path, jobs: int, steps: int, postgres: LocalPostgres) -> dict:
    folder.mkdir(parents=True)
    server = None
    if store == "sqlite":
        uri = f"sqlite:///{folder}/mlflow.db"
    else:
        database = f"bench_{folder.name.replace('-', '_')}"
        if "postgres" in store:
            postgres.create_database(database)
        backend = (with_driver(postgres.uri(database, with_password=False))
                   if "postgres" in store else f"sqlite:///{folder}/server.db")
        env = {**os.environ, "PGPASSWORD": postgres.password}
        if store.startswith("server"):
            server, uri = start_server(backend, folder, env)
        else:
            uri = postgres.uri(database)
    try:
        uri = open_store(uri)  # a SQL store's schema made before the jobs (a password moves to PGPASSWORD)
        prober = Prober(uri)
        prober.start()
        try:
            wall, code = sweep(folder, uri, jobs, steps)
        finally:
            prober.done.set()
            prober.join()
        counts = census(uri, jobs, steps)
    finally:
        if server is not None:
            os.killpg(server.pid, 15)
            server.wait(timeout=60)
    latencies = sorted(prober.latencies) or [float("nan")]
    return {**counts, "wall": wall, "exit": code, "probe_failed": prober.failed,
            "p50": 1e3 * statistics.median(latencies),
            "p99": 1e3 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]}


def scratch_postgres(prefix: str) -> tuple[Path, LocalPostgres]:
    """A scratch folder and a PostgreSQL cluster running in it."""
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    scratch.chmod(0o711)  # the PostgreSQL cluster's own user reaches its folder
    postgres = LocalPostgres(scratch / "postgres", free_port())
    postgres.init()
    postgres.start()
    return scratch, postgres


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--stores", nargs="+", default=list(STORES), choices=STORES)
    args = parser.parse_args()
    scratch, postgres = scratch_postgres("dataeff-bench-store-")
    warm = scratch / "warm"
    warm.mkdir()
    sweep(warm, f"sqlite:///{warm}/mlflow.db", 1, 5)  # the token cache, filled once
    print(f"{os.cpu_count()} CPUs, {args.steps} steps a job, train/loss logged every step")
    print(f"{'store':16} {'jobs':>4} {'finished':>8} {'written':>7} {'read':>7} {'dup':>4} {'writes/s':>8} "
          f"{'overhead/step ms':>16} {'p50 ms':>7} {'p99 ms':>7} {'wall s':>7}")
    try:
        for jobs in args.jobs:
            bare_folder = scratch / f"bare-{jobs}"
            bare_folder.mkdir()
            bare, _ = sweep(bare_folder, f"sqlite:///{bare_folder}/mlflow.db", jobs, args.steps, every=50)
            for store in args.stores:
                row = measure(store, scratch / f"{store}-{jobs}", jobs, args.steps, postgres)
                overhead = 1e3 * (row["wall"] - bare) / args.steps
                print(f"{store:16} {jobs:4d} {row['finished']:5d}/{jobs:<2d} {row['written']:7d} {row['read']:7d} "
                      f"{row['duplicated']:4d} {row['all_values'] / row['wall']:8.0f} {overhead:16.1f} "
                      f"{row['p50']:7.1f} {row['p99']:7.1f} {row['wall']:7.1f}"
                      + ("" if row["exit"] == 0 else f"  (the sweep exited {row['exit']})")
                      + (f"  ({row['probe_failed']} logging calls failed)" if row["probe_failed"] else ""),
                      flush=True)
    finally:
        postgres.stop()


if __name__ == "__main__":
    main()
