"""A Hydra multirun as one MLflow parent run, its jobs the children, its report at the end."""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from hydra.utils import instantiate
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from omegaconf import DictConfig, OmegaConf

from dataeff.errors import UserError
from dataeff.launch import quiet_loky_tracker
from dataeff.overrides import typed_overrides
from dataeff.runs.keys import earlier_sweep, latest_per_job, sweep_key
from dataeff.runs.liveness import looks_dead, process_tags
from dataeff.runs.naming import MAX_TAG, PARENT_FILE, parent_run_id
from dataeff.runs.outbox import is_outage
from dataeff.runs.progress import start_tags, sweep_progress
from dataeff.runs.stopping import GRACE_S, catch_signals, ignore_signals, stop_started_processes
from dataeff.runs.store import experiment_id, open_store, redact
from dataeff.runs.tags import (
    CHILDREN_TAG,
    DISK_TAG,
    ERROR_TAG,
    FAILED_CHILDREN_TAG,
    HOST_TAG,
    OVERRIDES_TAG,
    PID_TAG,
    PROGRESS_TAG,
    REPORT_ERROR_TAG,
    SMOKE_TAG,
    SWEEP_ATTEMPTS_TAG,
    SWEEP_DIR_TAG,
    SWEEP_KEY_TAG,
    sweep_attempt_tag,
)
from dataeff.stages.fanout import before_fanout

log = logging.getLogger(__name__)
RESULTS_FILE = "optimization_results.yaml"  # what Hydra's Optuna sweeper leaves in the sweep dir
RAY_LAUNCHER = "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"
JOBLIB_LAUNCHER = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"


def start_ray_first(launcher: DictConfig) -> None:
    """Hydra's Ray launcher starts Ray unless it runs already, and `ray.init` puts a SIGTERM handler
    of its own in place (it exits, leaving every run RUNNING): start Ray here, before the sweep's."""
    if launcher.get("_target_") != RAY_LAUNCHER:
        return
    import ray  # the ray extra: only for hydra/launcher=ray

    if not ray.is_initialized():
        ray.init(**OmegaConf.to_container(launcher.ray.init, resolve=True))


def start_joblib_tracker_quietly(launcher: DictConfig) -> None:
    """joblib's workers share a resource tracker process that writes to the sweep's stderr; when a
    stopped sweep's workers exit, it can print a KeyError traceback of its own (loky unregisters a
    semaphore twice). Started here first, with its stderr on /dev/null (as is any later launch:
    dataeff.launch.quiet_loky_tracker), it cleans up as before and the user reads dataeff's lines
    alone."""
    if launcher.get("_target_") != JOBLIB_LAUNCHER:
        return
    from joblib.externals.loky.backend import resource_tracker  # the joblib extra: for its launcher only

    quiet_loky_tracker()
    resource_tracker.ensure_running()


class SweepRun(Callback):
    """Hydra callback: a multirun is one parent MLflow run, its jobs are the children."""

    def __init__(self, tracking_uri: str, experiment_name: str, artifact_location: str | None = None,
                 report: DictConfig | None = None, writers: DictConfig | None = None):
        self.tracking_uri, self.experiment_name = tracking_uri, experiment_name
        self.artifact_location, self.report = artifact_location, report
        # the report writers (`_partial_` targets), built when the sweep ends: a job that is no
        # sweep never loads the report's statistics and plotting
        self.writers = writers
        self.run_id: str | None = None
        self.smoke = False  # trainer.fast_dev_run: its runs log no metrics, so no report either

    @property
    def client(self) -> MlflowClient:
        return MlflowClient(self.tracking_uri)  # opened (credentials out) in _start

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        """Hydra turns a callback's exception into a warning and would run the jobs without their
        parent: a sweep that cannot have one stops here instead."""
        try:
            self._start(config)
        except UserError as err:
            print(f"\nError: {err}", file=sys.stderr)
            sys.exit(1)
        except Exception:
            log.exception("The sweep's MLflow parent run could not be set up; no job was started")
            sys.exit(1)

    def _start(self, config: DictConfig) -> None:
        self.tracking_uri = open_store(self.tracking_uri)
        client = self.client
        exp = experiment_id(client, self.experiment_name, self.artifact_location)
        sweep_dir = Path(config.hydra.sweep.dir)
        key = sweep_key(config)
        earlier = None if config.get("rerun") else earlier_sweep(client, exp, key)
        self.smoke = bool(OmegaConf.select(config, "trainer.fast_dev_run"))
        if earlier is None:
            overrides = redact(" ".join(typed_overrides(config.hydra)))
            self.run_id = client.create_run(exp, run_name=f"sweep {sweep_dir.name}", tags={
                SWEEP_KEY_TAG: key, OVERRIDES_TAG: overrides[:MAX_TAG], **process_tags(),
                SWEEP_DIR_TAG: str(sweep_dir), SWEEP_ATTEMPTS_TAG: "1",
                **({SMOKE_TAG: "true"} if self.smoke else {})}).info.run_id
            log.info("MLflow parent run %s for sweep %s", self.run_id, sweep_dir)
        else:
            self.run_id = self._continue(client, earlier, sweep_dir)
        for name, value in start_tags(config).items():  # what each job's progress line counts on
            client.set_tag(self.run_id, name, value)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / PARENT_FILE).write_text(self.run_id)
        atexit.register(self._close, "FAILED")  # the sweep raised before on_multirun_end
        start_ray_first(config.hydra.launcher)
        start_joblib_tracker_quietly(config.hydra.launcher)
        catch_signals(self._on_signal)  # a job run in this process puts its own in place while it runs
        before_fanout(config, self.tracking_uri)  # the audits and pretraining runs its jobs share

    def _continue(self, client: MlflowClient, parent, sweep_dir: Path) -> str:
        """The same sweep again: its parent run goes on, and its jobs skip what they finished."""
        run_id, tags, status = parent.info.run_id, parent.data.tags, parent.info.status
        if status == "RUNNING" and not looks_dead(tags, parent.info.start_time):
            print(f"\nError: This sweep is already running as MLflow run {run_id} (process "
                  f"{tags.get(PID_TAG)} on {tags.get(HOST_TAG)}). Wait for it, stop it, or "
                  "start a separate study beside it with rerun=true.", file=sys.stderr)
            sys.exit(1)
        attempt = int(tags.get(SWEEP_ATTEMPTS_TAG, "1")) + 1
        for key, value in {SWEEP_ATTEMPTS_TAG: str(attempt), SWEEP_DIR_TAG: str(sweep_dir),
                           sweep_attempt_tag(attempt, "previous_status"): status,
                           **process_tags()}.items():
            client.set_tag(run_id, key, value)
        client.update_run(run_id, status="RUNNING")
        log.info("Continuing sweep %s (MLflow parent run %s, attempt %d): jobs it FINISHED are "
                 "skipped; rerun=true trains them again", parent.info.run_name, run_id, attempt)
        return run_id

    def on_job_end(self, config: DictConfig, job_return, **kwargs) -> None:
        """Where the sweep stands, in the log and as the parent's tag `dataeff.progress`. Called in
        the process that ran the job (a worker under joblib), hence the parent from the sweep dir."""
        from pytorch_lightning.utilities import rank_zero_only  # loaded by the job already

        parent = parent_run_id()
        if parent is not None and rank_zero_only.rank == 0:  # a DDP job's other ranks: said once
            text = self._progress(parent)
            if text:
                log.info("Sweep: %s", text)

    def _progress(self, parent: str) -> str | None:
        try:
            client = self.client
            text = sweep_progress(client, parent).text()
            client.set_tag(parent, PROGRESS_TAG, text)
            return text
        except Exception as err:  # a progress line is never worth a sweep
            log.warning("No sweep progress (%s: %s)", type(err).__name__, err)
            return None

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        self._progress(self.run_id)  # parallel jobs may have set their tags out of order
        self._log_best(Path(config.hydra.sweep.dir) / RESULTS_FILE, config.task.get("objective"))
        if not self.smoke:  # a study's data-efficiency report, or any other sweep's table
            out_dir = Path(config.hydra.sweep.dir) / "report"
            if self.report is not None:
                self._write_report(out_dir)
            else:
                self._write_sweep_table(out_dir, config)
        self._close("FINISHED")

    def _log_best(self, results_file: Path, objective: str | None) -> None:
        """A search's result (Hydra's Optuna sweeper writes it) on the parent: the best value as
        metric `best/<objective>`, the best parameters as tags `best.<name>`, and the file."""
        if not results_file.exists():
            return
        client = self.client
        results = OmegaConf.load(results_file)
        client.log_artifact(self.run_id, str(results_file))
        if "best_value" in results:
            client.log_metric(self.run_id, f"best/{objective or 'value'}", float(results.best_value))
            for name, value in results.best_params.items():
                client.set_tag(self.run_id, f"best.{name}", str(value))
            log.info("Best %s %s with %s", objective, results.best_value, dict(results.best_params))

    def _write_report(self, out_dir: Path) -> None:
        """The study's report (table, curves, multipliers) as files and as parent-run artifacts."""
        try:
            write_report = instantiate(self.writers.study)
            path = write_report(self.experiment_name, self.run_id, tracking_uri=self.tracking_uri,
                                out_dir=out_dir, **OmegaConf.to_container(self.report, resolve=True))
        except UserError as err:  # e.g. every job failed: the sweep's runs are still there to inspect
            log.warning("No study report: %s", err)
            self.client.set_tag(self.run_id, REPORT_ERROR_TAG, str(err)[:MAX_TAG])
            return
        print(path.read_text(encoding="utf-8"))
        log.info("Study report in %s (and in the parent run's artifacts under report/)", out_dir)

    def _on_signal(self, signum, frame) -> None:
        """SIGTERM or Ctrl-C to the sweep: its jobs are stopped (each run KILLED), then the parent."""
        ignore_signals()
        name = signal.Signals(signum).name
        log.warning("%s: stopping the sweep's jobs; each run ends KILLED", name)
        client = self.client
        killed = stop_started_processes(lambda: not self._running_children(client))
        for child in self._running_children(client):  # a job whose process was killed could not say so
            client.set_tag(child.info.run_id, ERROR_TAG, f"Stopped by {name} (its sweep's): its process "
                           f"did not stop within {GRACE_S} s and was killed")
            client.set_terminated(child.info.run_id, "KILLED")
        self._close("KILLED")
        log.warning("Sweep stopped by %s%s; run the same command again to continue it", name,
                    f" ({len(killed)} process(es) had to be killed)" if killed else "")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + signum)  # not sys.exit: joblib's and submitit's own shutdown would wait on the dead

    def _running_children(self, client: MlflowClient) -> list:
        return [child for child in self._children(client) if child.info.status == "RUNNING"]

    def _children(self, client: MlflowClient) -> list:
        experiment = client.get_run(self.run_id).info.experiment_id
        return latest_per_job(client.search_runs(
            [experiment], f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{self.run_id}'", max_results=50000))

    def _write_sweep_table(self, out_dir: Path, config: DictConfig) -> None:
        try:
            write_sweep_table = instantiate(self.writers.sweep)
            path = write_sweep_table(self.experiment_name, self.run_id, self.tracking_uri, out_dir,
                                     config.task.get("objective"), config.task.get("objective_mode", "max"))
        except UserError as err:  # e.g. every job failed: the sweep's runs are still there to inspect
            log.warning("No sweep report: %s", err)
            return
        print(path.read_text(encoding="utf-8"))
        log.info("Sweep report in %s (and in the parent run's artifacts under report/)", path)

    def _close(self, default: str) -> None:
        """Terminate the parent once: KILLED if a job's latest run was killed, else FINISHED when the
    sweeper ended normally and FAILED when it raised (Hydra's sweepers raise on a failed job). A
    store that does not answer then leaves the parent RUNNING, and says so."""
        atexit.unregister(self._close)  # tried once: a store that came back must not read FAILED
        try:
            self._terminate(default)
        except Exception as err:
            if not is_outage(err):
                raise
            log.warning("The MLflow store did not answer as the sweep ended (%s): its parent run %s stays "
                        "RUNNING. Run the same command again once the store is back: the finished jobs "
                        "are skipped and the parent is closed.", redact(str(err).splitlines()[0])[:200],
                        self.run_id)

    def _terminate(self, default: str) -> None:
        client = self.client
        parent = client.get_run(self.run_id)
        if parent.info.status != "RUNNING":
            return
        children = self._children(client)
        statuses = [child.info.status for child in children]
        # a sweeper that ends normally accepted its failed jobs (an Optuna search goes on past them)
        status = "KILLED" if "KILLED" in statuses else default
        client.set_tag(self.run_id, CHILDREN_TAG, str(len(children)))
        client.set_tag(self.run_id, FAILED_CHILDREN_TAG, str(statuses.count("FAILED")))
        disk = [float(child.data.tags[DISK_TAG]) for child in children if DISK_TAG in child.data.tags]
        if disk:  # what the study costs in storage, and what one more run of it would
            client.set_tag(self.run_id, DISK_TAG, f"{sum(disk):.1f}")
            log.info("This study keeps %.2f GB on disk: %.0f MB per run over %d runs",
                     sum(disk) / 1e3, sum(disk) / len(disk), len(disk))
        client.set_terminated(self.run_id, status)
