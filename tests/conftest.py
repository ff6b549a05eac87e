"""Fixtures: each test gets its own working directory, MLflow store and output folders.

`run_app` runs the real Hydra app in-process (what `dataeff-train` runs, minus the interpreter
start), its sub-runs too; `run_cli` runs the installed console script in a subprocess.
"""

from __future__ import annotations

import compileall
import os
import shutil
import subprocess
import sys
from pathlib import Path

# pytest-xdist runs a worker per core: each worker, and each job it starts, gets its share of the
# cores (set before torch is imported), or their OpenMP thread pools fight over the cores and the
# suite runs ~1.5x slower (measured on 2 cores).
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    _workers = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _cores // _workers)))

import pytest
from hydra.core.global_hydra import GlobalHydra
from mlflow.tracking import MlflowClient

from dataeff.runs.store import open_store

# a few optimizer steps on the tiny preset: seconds per run
FAST = ["trainer.max_steps=6", "trainer.val_check_interval=3", "data.batch_size=16",
        "trainer.limit_val_batches=4", "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false", "trainer.log_every_n_steps=2"]


def pytest_configure(config):
    """dataeff's bytecode written once, before the workers start: the ~50 processes the suite
    starts (CLI jobs, sweep workers, DDP ranks) read it instead of each compiling dataeff again
    (~0.5 s a process where PYTHONDONTWRITEBYTECODE is set, as on CI)."""
    if not hasattr(config, "workerinput"):  # the controller, not each xdist worker
        compileall.compile_dir(Path(__file__).resolve().parent.parent / "dataeff", quiet=1)


def pytest_collection_modifyitems(config, items):
    """The tests marked `slow` first: pytest-xdist hands tests out in this order (one at a time with
    `make test`'s --maxschedchunk=1; its default chunks gave one worker every slow test), and a long
    test handed out last keeps one core busy while the other has nothing left. Tests marked `gpu` need
    CUDA; elsewhere they are skipped, saying why."""
    import torch

    items.sort(key=lambda item: "slow" not in item.keywords)  # stable: file order otherwise
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (make gpu-check on a machine with one)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def no_store_of_yours(monkeypatch):
    """A store the developer's shell points at (DATAEFF_ROOT, MLFLOW_TRACKING_URI) never reaches a
    test: each test writes only under its own folder."""
    monkeypatch.delenv("DATAEFF_ROOT", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """Tokenizers and tokenized corpora are cached across tests, as across a user's runs."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow store as dataeff creates it on a first run; creating one costs ~2 s (MLflow's
    migrations), so tests start from a copy unless marked `fresh_store`."""
    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    open_store(f"sqlite:///{path}")
    return path


@pytest.fixture
def workdir(request, tmp_path, monkeypatch, shared_cache, empty_store) -> Path:
    if request.node.get_closest_marker("fresh_store") is None:
        shutil.copy(empty_store, tmp_path / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATAEFF_TEST_CACHE", str(shared_cache))
    monkeypatch.setenv("DATAEFF_SUBRUNS", "in_process")  # run_app's sub-runs; cli_env drops it
    return tmp_path


def cache_override() -> str:
    return f"paths.cache_dir={os.environ['DATAEFF_TEST_CACHE']}"


def run_app(*overrides: str, multirun: bool = False) -> int:
    """Run the Hydra app in this process; return its exit code (0 when it returns). The runs a job
    needs first (pretraining, tuning trials, the audit, AL rounds) run in this process too
    (DATAEFF_SUBRUNS, set for every test); the CLI tests (`run_cli`) keep them in processes of
    their own, as users run them."""
    from dataeff.app import main

    argv = ["dataeff-train", *(["-m"] if multirun else []), cache_override(), *overrides]
    GlobalHydra.instance().clear()
    saved = sys.argv
    sys.argv = argv
    try:
        main()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    finally:
        sys.argv = saved
        GlobalHydra.instance().clear()
    return 0


def cli_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("dataeff-train")), *args, cache_override()]


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DATAEFF_SUBRUNS")}
    return {**env, **extra}


def run_cli(*args: str, cwd: Path, timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    """The installed console script, as a user runs it."""
    return subprocess.run(cli_command(*args), cwd=cwd, env=cli_env(**env), capture_output=True,
                          text=True, timeout=timeout)


# A job started from a terminal gets SIGHUP and SIGINT; a CI that runs the suite under nohup, or
# from a script's `&`, hands its children SIGHUP and SIGINT ignored. The same pid, exec'd.
AS_FROM_A_TERMINAL = [sys.executable, "-c", "import os, signal, sys\n"
                      "for sig in (signal.SIGHUP, signal.SIGINT): signal.signal(sig, signal.SIG_DFL)\n"
                      "os.execv(sys.argv[1], sys.argv[1:])"]


def start_cli(*args: str, cwd: Path, **env: str) -> subprocess.Popen:
    """The console script started in the background, as from a terminal (to be signalled, or run
    beside others)."""
    return subprocess.Popen([*AS_FROM_A_TERMINAL, *cli_command(*args)], cwd=cwd, env=cli_env(**env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def store(workdir: Path) -> MlflowClient:
    """The default store, opened as dataeff opens it (a job may be creating it right now)."""
    return MlflowClient(open_store(f"sqlite:///{workdir}/mlflow.db"))


def runs(workdir: Path, experiment: str = "mlm") -> list:
    """All runs of an experiment in the default store, oldest first."""
    if not (workdir / "mlflow.db").exists():
        return []
    client = store(workdir)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])


def metric_history(workdir: Path, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in store(workdir).get_metric_history(run_id, key)]


def parent_and_children(workdir: Path, experiment: str = "mlm"):
    """A sweep's parent run and its children, the experiment holding nothing else."""
    every = runs(workdir, experiment)
    [parent] = [r for r in every if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in every if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(every) == 1 + len(children)
    return parent, children
