"""The MLflow store under parallel jobs, behind a real tracking server, and when it is down."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import requests
from filelock import FileLock
from mlflow.tracking import MlflowClient

from dataeff.runs.outbox import OUTBOX, DeliveringClient
from dataeff.runs.store import open_store
from tests.conftest import FAST, run_app, runs, start_cli
from tests.relay import Relay

pytestmark = pytest.mark.slow
SHORT = [*FAST, "trainer.max_steps=2", "trainer.val_check_interval=2", "trainer.limit_val_batches=1",
         "trainer.limit_test_batches=2"]  # the store is the point, not the test split (~5 s a job)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(root: Path, port: int, backend: str | None = None, **env: str) -> subprocess.Popen:
    """A real `mlflow server` on loopback with its own store (SQLite in `root`, or `backend`) and
    artifact folder, once it answers."""
    mlflow = Path(sys.executable).with_name("mlflow")
    server = subprocess.Popen(
        [str(mlflow), "server", "--backend-store-uri", backend or f"sqlite:///{root}/server.db",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, **env})
    for _ in range(240):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return server
        except OSError:
            time.sleep(0.5)
    stop_server(server)
    pytest.fail("mlflow server did not start within 2 minutes")


def stop_server(server: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):  # killed already (a test that killed it failed)
        os.killpg(server.pid, signal.SIGTERM)  # the server and its uvicorn worker
    server.wait(timeout=30)


@pytest.mark.system
@pytest.mark.fresh_store
def test_jobs_started_together_on_a_fresh_store_all_land(workdir):
    jobs = [start_cli(*SHORT, f"seed={seed}", cwd=workdir, OMP_NUM_THREADS="1") for seed in range(6)]
    outputs = [job.communicate(timeout=600) for job in jobs]
    for job, (_, err) in zip(jobs, outputs):
        assert job.returncode == 0, err[-2000:]
    assert sorted(r.data.tags["seed"] for r in runs(workdir)) == [str(s) for s in range(6)]
    assert {r.info.status for r in runs(workdir)} == {"FINISHED"}


def test_a_store_another_job_is_creating_is_waited_for_not_called_foreign(tmp_path):
    """MLflow creates its tables before it stamps `alembic_version`: a job that looks in between
    sees "experiments, metrics, params, runs, tags" only. It looks under the creator's lock."""
    store = tmp_path / "mlflow.db"
    with sqlite3.connect(store) as db:  # what a half-created store holds
        db.executescript("CREATE TABLE experiments (x); CREATE TABLE runs (x); CREATE TABLE metrics (x);")
    creator = FileLock(f"{store}.lock")
    creator.acquire()
    failures = []
    opener = threading.Thread(target=lambda: call_collecting(failures, open_store, f"sqlite:///{store}"))
    opener.start()
    time.sleep(1)
    assert opener.is_alive() and not failures  # waiting for the creator, not judging its half-made file
    store.unlink()
    MlflowClient(f"sqlite:///{tmp_path / 'made.db'}").search_experiments()
    (tmp_path / "made.db").rename(store)  # the creator finishes
    creator.release()
    opener.join(timeout=60)
    assert not failures
    assert [e.name for e in MlflowClient(f"sqlite:///{store}").search_experiments()] == ["Default"]


def call_collecting(failures: list, function, *args) -> None:
    try:
        function(*args)
    except Exception as err:  # noqa: BLE001 - the test asserts on it
        failures.append(err)


def test_an_unreachable_server_fails_within_seconds(workdir, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    start = time.monotonic()
    assert run_app(*SHORT) == 1
    assert time.monotonic() - start < 60
    err = capsys.readouterr().err
    assert "did not answer" in err and "Traceback" not in err


@pytest.mark.system
def test_through_a_real_server_artifacts_go_there_an_outage_loses_nothing_and_no_password_is_kept(
        workdir, tmp_path):
    root, port = tmp_path / "server", free_port()
    server = start_server(root, port)
    relay = Relay(port)  # the job's way to the server: cut mid-training, as if the server died
    relay.restore()
    url = f"http://127.0.0.1:{relay.port}"
    job = start_cli(*FAST, "trainer.max_steps=150", "trainer.val_check_interval=50",
                    "trainer.log_every_n_steps=1", "logger.mlflow.log_model=true",
                    "logger.mlflow.outage_wait_s=2", cwd=workdir,  # the relay stays cut
                    MLFLOW_TRACKING_URI=url.replace("http://", "http://alice:s3cret-pw@"))
    client = MlflowClient(f"http://127.0.0.1:{port}")

    def trained_steps() -> int:
        found = client.search_runs([e.experiment_id for e in client.search_experiments()])
        return len(client.get_metric_history(found[0].info.run_id, "train/loss")) if found else 0

    try:
        while trained_steps() < 10:  # each step's write waits on the server: seconds
            assert job.poll() is None, job.communicate()[1][-3000:]
            time.sleep(1)  # the server has one worker: the job's writes go first
        relay.cut()  # mid-training
        out, err = job.communicate(timeout=300)
        assert job.returncode == 0, err[-3000:]
        assert "dataeff-store replay" in out + err and "Traceback" not in out + err
        [output_dir] = (workdir / "outputs" / "mlm" / "runs").iterdir()
        [run] = client.search_runs([client.get_experiment_by_name("mlm").experiment_id])
        assert run.info.status == "RUNNING"  # the end of the run is in the outbox, not on the server

        relay.restore()  # the server, back
        replay = subprocess.run([str(Path(sys.executable).with_name("dataeff-store")), "replay",
                                 str(output_dir)], capture_output=True, text=True, timeout=300)
        assert replay.returncode == 0, replay.stderr[-3000:]
        [run] = client.search_runs([client.get_experiment_by_name("mlm").experiment_id])
    finally:
        relay.cut()
        stop_server(server)
    assert run.info.status == "FINISHED" and run.data.params["logger.mlflow.tracking_uri"] == url
    history = sorted(client_history(root, run.info.run_id, "train/loss"), key=lambda m: m.step)
    assert [m.step for m in history] == list(range(150))  # every step, once
    gaps = [(b.timestamp - a.timestamp) / 1000 for a, b in zip(history, history[1:])]
    assert max(gaps) < 10, max(gaps)  # no step waited on the dead server (a client waits minutes)
    assert not (output_dir / "mlflow_outbox" / "outbox.jsonl").exists()

    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # uploaded through the server
    on_server = {p.relative_to(root / "artifacts").as_posix() for p in (root / "artifacts").rglob("*")}
    run_folder = f"{run.info.experiment_id}/{run.info.run_id}/artifacts"
    assert {f"{run_folder}/config.yaml", f"{run_folder}/hf_model/model.safetensors",
            f"{run_folder}/last/last.ckpt"} <= on_server
    assert not (workdir / "mlartifacts").exists()  # nothing went to a client-side folder
    assert "s3cret-pw" not in out + err + replay.stdout + replay.stderr
    for path in [*workdir.rglob("*"), *root.rglob("*")]:
        assert not path.is_file() or b"s3cret-pw" not in path.read_bytes(), path


@pytest.mark.system
def test_a_server_killed_for_20_s_mid_sweep_loses_nothing_and_no_job_fails(workdir, tmp_path):
    """`mlflow server` killed (SIGKILL, its workers too) while a sweep's first job trains, started
    again 20 s later: the job trains on, waits for the server at its end, and every run ends
    FINISHED with each step once, with no replay."""
    root, port = tmp_path / "server", free_port()
    server = start_server(root, port)
    url = f"http://127.0.0.1:{port}"
    client = MlflowClient(url)
    sweep = start_cli("-m", "seed=0,1", *FAST, "trainer.max_steps=150", "trainer.val_check_interval=50",
                      "trainer.log_every_n_steps=1", cwd=workdir, MLFLOW_TRACKING_URI=url)
    try:
        while len(job_steps(client).get("0", [])) < 10:
            assert sweep.poll() is None, sweep.communicate()[1][-3000:]
            time.sleep(0.5)
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        time.sleep(20)
        server = start_server(root, port)
        out, err = sweep.communicate(timeout=600)
        assert sweep.returncode == 0, err[-3000:]
        found = client.search_runs([e.experiment_id for e in client.search_experiments()])
    finally:
        stop_server(server)
    assert len(found) == 3 and {r.info.status for r in found} == {"FINISHED"}  # the parent, 2 jobs
    assert job_steps(MlflowClient(f"sqlite:///{root}/server.db")) == {"0": list(range(150)),
                                                                     "1": list(range(150))}
    assert "waits up to 60 s" in out + err and "send them with" not in out + err  # no replay needed
    assert "Traceback" not in out + err
    assert not list(workdir.rglob("outbox.jsonl"))


def test_a_job_that_ends_while_the_store_is_down_waits_until_ctrl_c_and_keeps_its_writes(tmp_path):
    class Down:  # a store that never answers
        tracking_uri = "http://127.0.0.1:9"

        def set_tag(self, run_id, key, value):
            raise requests.ConnectionError("Connection refused")

    client = DeliveringClient(Down(), tmp_path / OUTBOX)
    client.set_tag("run", "status", "done")  # kept
    before = signal.getsignal(signal.SIGINT)
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()  # Ctrl-C a second in
    start = time.monotonic()
    client.send_kept(wait_s=60)
    assert 0.9 < time.monotonic() - start < 10  # asked again, then stopped by Ctrl-C, not by 60 s
    assert client.outbox.pending() == 1  # kept for dataeff-store replay
    assert signal.getsignal(signal.SIGINT) is before


def job_steps(client: MlflowClient, key: str = "train/loss") -> dict[str, list[int]]:
    """Each job run's logged steps of `key`, by its seed."""
    found = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return {run.data.tags["seed"]: sorted(m.step for m in client.get_metric_history(run.info.run_id, key))
            for run in found if "seed" in run.data.tags}


def client_history(root: Path, run_id: str, key: str) -> list:
    """A metric's history read from the server's own store file (the server is stopped)."""
    return MlflowClient(f"sqlite:///{root}/server.db").get_metric_history(run_id, key)
