"""The MLflow store under parallel jobs, behind a real tracking server, and when it is down."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import FAST, run_cli, runs, start_cli

pytestmark = pytest.mark.slow
SHORT = [*FAST, "trainer.max_steps=2", "trainer.val_check_interval=2", "trainer.limit_val_batches=1"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on loopback with its own store and artifact folder."""
    root = tmp_path_factory.mktemp("server")
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    server = subprocess.Popen(
        [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{root}/server.db",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not start within 2 minutes")
        yield url, root
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_jobs_started_together_on_a_fresh_store_all_land(workdir):
    jobs = [start_cli(*SHORT, f"seed={seed}", cwd=workdir, OMP_NUM_THREADS="1") for seed in range(6)]
    outputs = [job.communicate(timeout=600) for job in jobs]
    for job, (_, err) in zip(jobs, outputs):
        assert job.returncode == 0, err[-2000:]
    assert sorted(r.data.tags["seed"] for r in runs(workdir)) == [str(s) for s in range(6)]
    assert {r.info.status for r in runs(workdir)} == {"FINISHED"}


def test_a_tracking_server_gets_the_run_its_artifacts_and_never_the_password(workdir, mlflow_server):
    url, root = mlflow_server
    with_password = url.replace("http://", "http://alice:s3cret-pw@")
    result = run_cli(*SHORT, cwd=workdir, MLFLOW_TRACKING_URI=with_password)
    assert result.returncode == 0, result.stderr[-3000:]

    client = MlflowClient(url)
    [run] = client.search_runs([client.get_experiment_by_name("mlm").experiment_id])
    assert run.info.status == "FINISHED" and "train/loss" in run.data.metrics
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    on_server = {p.relative_to(root / "artifacts").as_posix() for p in (root / "artifacts").rglob("*")}
    run_folder = f"{run.info.experiment_id}/{run.info.run_id}/artifacts"
    assert {f"{run_folder}/config.yaml", f"{run_folder}/hf_model/model.safetensors"} <= on_server
    assert not (workdir / "mlartifacts").exists()  # nothing went to a client-side folder

    assert "s3cret-pw" not in result.stdout + result.stderr
    assert run.data.params["logger.mlflow.tracking_uri"] == url
    for path in [*workdir.rglob("*"), *root.rglob("*")]:
        assert not path.is_file() or b"s3cret-pw" not in path.read_bytes(), path


def test_an_unreachable_server_fails_within_seconds(workdir):
    start = time.monotonic()
    result = run_cli(*SHORT, cwd=workdir, MLFLOW_TRACKING_URI=f"http://127.0.0.1:{free_port()}")
    assert time.monotonic() - start < 60
    assert result.returncode == 1
    assert "did not answer" in result.stderr and "Traceback" not in result.stderr
