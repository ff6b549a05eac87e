"""MLflow on PostgreSQL, a team's store: jobs started together on a fresh database all land, and a
database that is down or refuses the password stops a job at once, with no password anywhere.
The database is a real PostgreSQL cluster on loopback (Debian's package; make test-system
installs it)."""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from dataeff.runs.database import with_driver
from dataeff.runs.local_postgres import LocalPostgres
from tests.conftest import FAST, run_app, start_cli
from tests.test_store import SHORT, free_port, job_steps, start_server, stop_server

pytestmark = [pytest.mark.slow, pytest.mark.system]


@pytest.fixture(scope="module")
def postgres():
    folder = Path(tempfile.mkdtemp(prefix="dataeff-pg-"))
    folder.chmod(0o711)  # PostgreSQL runs as its own user, who must reach the cluster's folder
    cluster = LocalPostgres(folder / "cluster", free_port())
    cluster.init()
    cluster.start()
    yield cluster
    cluster.stop()


def fresh_database(cluster: LocalPostgres) -> str:
    name = f"test_{uuid.uuid4().hex[:12]}"
    cluster.create_database(name)
    return cluster.uri(name)


def test_eight_jobs_started_together_on_a_fresh_database_all_land_and_keep_no_password(postgres, workdir):
    uri = fresh_database(postgres)
    jobs = [start_cli(*SHORT, f"seed={seed}", cwd=workdir, OMP_NUM_THREADS="1", MLFLOW_TRACKING_URI=uri)
            for seed in range(8)]
    outputs = [job.communicate(timeout=600) for job in jobs]
    for job, (_, err) in zip(jobs, outputs):
        assert job.returncode == 0, err[-2000:]
    client = MlflowClient(with_driver(uri))
    [experiment] = [e for e in client.search_experiments() if e.name == "mlm"]
    found = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["seed"] for r in found) == [str(s) for s in range(8)]
    assert {r.info.status for r in found} == {"FINISHED"}
    password = postgres.password
    for run in found:  # params, tags (the overrides, the store), what the jobs printed, their files
        assert not any(password in value for value in [*run.data.params.values(), *run.data.tags.values()])
    assert not any(password in out + err for out, err in outputs)
    assert not kept_anywhere(password, workdir)


def kept_anywhere(secret: str, folder: Path) -> list[Path]:
    """The files under `folder` (checkpoints aside) that hold `secret`."""
    files = [path for path in folder.rglob("*") if path.is_file() and path.suffix != ".ckpt"]
    assert files
    return [path for path in files if secret.encode() in path.read_bytes()]


@pytest.mark.parametrize("fault", ["down", "wrong password"])
def test_a_database_that_is_down_or_refuses_the_password_stops_the_job_at_once(
        fault, postgres, workdir, monkeypatch, capsys):
    uri = fresh_database(postgres)
    if fault == "down":
        uri = uri.replace(f":{postgres.port}/", f":{free_port()}/")
    else:
        uri = uri.replace(f":{postgres.password}@", ":not-the-password@")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    assert run_app(*SHORT) == 1
    err = capsys.readouterr().err
    said = "Connection refused" if fault == "down" else "password authentication failed"
    assert f"The PostgreSQL store postgresql+psycopg2://{postgres.user}@127.0.0.1:" in err and said in err
    assert "Traceback" not in err and "not-the-password" not in err and postgres.password not in err
    assert not kept_anywhere("not-the-password", workdir) and not kept_anywhere(postgres.password, workdir)


@pytest.mark.parametrize("through", ["server", "database"])
def test_a_sweep_goes_on_through_a_database_restart_and_loses_no_step(through, postgres, workdir, tmp_path):
    """PostgreSQL restarted while a sweep's first job trains: every run ends FINISHED with each
    step once, through an `mlflow server` on the database or straight to it."""
    steps = 150  # the first job trains on through the outage, or waits for the store at its end
    uri = fresh_database(postgres)
    direct = with_driver(uri)
    server = None
    if through == "server":
        port = free_port()
        bare = direct.replace(f":{postgres.password}@", "@")
        server = start_server(tmp_path / "server", port, bare, PGPASSWORD=postgres.password)
        uri = f"http://127.0.0.1:{port}"
    client = MlflowClient(uri if server else direct)
    sweep = start_cli("-m", "seed=0,1", *FAST, f"trainer.max_steps={steps}", "trainer.val_check_interval=200",
                      "trainer.log_every_n_steps=1", cwd=workdir, MLFLOW_TRACKING_URI=uri)
    try:
        while len(job_steps(client).get("0", [])) < 20:
            assert sweep.poll() is None, sweep.communicate()[1][-3000:]
            time.sleep(0.5)
        postgres.stop()  # early in the first job
        time.sleep(2)
        postgres.start()
        out, err = sweep.communicate(timeout=600)
        assert sweep.returncode == 0, err[-3000:]
        found = client.search_runs([e.experiment_id for e in client.search_experiments()])
        assert len(found) == 3 and {r.info.status for r in found} == {"FINISHED"}  # the parent, 2 jobs
        assert job_steps(client) == {"0": list(range(steps)), "1": list(range(steps))}  # each step once
        assert postgres.password not in out + err and "Traceback" not in out + err
    finally:
        if server is not None:
            stop_server(server)
