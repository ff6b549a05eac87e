"""MLflow conventions: one run per job, a parent run per sweep, honest run status.

A job's run carries the flattened resolved config as params, the ablation axes as tags,
`config.yaml` as an artifact and the git commit; it ends FINISHED, FAILED or KILLED.
Only the rank-0 process talks to MLflow, so a DDP job is still one run.
"""

from __future__ import annotations

import atexit
import logging
import signal
import subprocess
import tempfile
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from mlflow.entities import Param
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_PARENT_RUN_ID
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import SIGTERMException

from dataeff.checkpoints import mlflow_run_id
from dataeff.errors import UserError

log = logging.getLogger(__name__)
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}  # not the GenAI view
PARENT_FILE = "mlflow_parent_run_id"
MAX_PARAM, MAX_TAG = 6000, 8000


def experiment_id(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    if artifact_location and "://" not in artifact_location:
        artifact_location = Path(artifact_location).resolve().as_uri()
    return client.create_experiment(name, artifact_location=artifact_location, tags=EXPERIMENT_TAGS)


def flatten(tree, prefix: str = "") -> dict[str, str]:
    """Dotted keys -> string values, as MLflow params want them (lists stay one value)."""
    if isinstance(tree, dict):
        items = {}
        for key, value in tree.items():
            items.update(flatten(value, f"{prefix}{key}."))
        return items
    return {prefix[:-1]: str(tree)[:MAX_PARAM]}


def axis_tags(cfg: DictConfig) -> dict[str, str]:
    """The ablation axes named in `tracking.axes`, plus the user's free-form `tags`."""
    tags = {key: str(OmegaConf.select(cfg, key)) for key in cfg.tracking.axes}
    tags.update({str(k): str(v) for k, v in (cfg.get("tags") or {}).items()})
    return tags


def git_commit(folder: str) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


class JobRun:
    """Context manager owning a job's MLflow run: create (or resume), describe, terminate."""

    def __init__(self, cfg: DictConfig):
        self.cfg, self.mlflow_cfg = cfg, cfg.logger.mlflow
        self.run_id: str | None = None
        self.parent_id: str | None = None
        self.killed = False
        self.client: MlflowClient | None = None

    def __enter__(self) -> JobRun:
        if rank_zero_only.rank != 0:
            return self
        self.client = MlflowClient(self.mlflow_cfg.tracking_uri)
        resumed = self.cfg.get("ckpt_path") and mlflow_run_id(self.cfg.ckpt_path)
        if resumed:
            self.run_id = resumed
            self.client.update_run(resumed, status="RUNNING")
            log.info("Resuming MLflow run %s", resumed)
        else:
            self.run_id = self._create_run()
        self._describe()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        return self

    def _create_run(self) -> str:
        exp = experiment_id(self.client, self.mlflow_cfg.experiment_name,
                            self.mlflow_cfg.get("artifact_location"))
        tags = axis_tags(self.cfg)
        self.parent_id = parent_run_id()
        if self.parent_id:
            tags[MLFLOW_PARENT_RUN_ID] = self.parent_id
        commit = git_commit(self.cfg.paths.root_dir)
        if commit:
            tags[MLFLOW_GIT_COMMIT] = commit
        run = self.client.create_run(exp, tags=tags, run_name=run_name())
        log.info("MLflow run %s in experiment %r (%s)", run.info.run_id,
                 self.mlflow_cfg.experiment_name, self.mlflow_cfg.tracking_uri)
        return run.info.run_id

    def _describe(self) -> None:
        """Params (only new ones on resume: MLflow params are write-once), overrides, config."""
        resolved = OmegaConf.to_container(self.cfg, resolve=True)
        logged = self.client.get_run(self.run_id).data.params
        params = [Param(k[:250], v) for k, v in flatten(resolved).items() if k not in logged]
        for start in range(0, len(params), 100):  # MLflow's batch limit
            self.client.log_batch(self.run_id, params=params[start:start + 100])
        overrides = " ".join(job_overrides())
        self.client.set_tag(self.run_id, "dataeff.overrides", overrides[:MAX_TAG])
        self.client.set_tag(self.run_id, "dataeff.output_dir", self.cfg.paths.output_dir)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "config.yaml"
            path.write_text(OmegaConf.to_yaml(resolved))
            self.client.log_artifact(self.run_id, str(path))

    def set_tags(self, tags: dict) -> None:
        if self.run_id:
            for key, value in tags.items():
                self.client.set_tag(self.run_id, key, str(value)[:MAX_TAG])

    def log_json(self, obj, name: str) -> None:
        if self.run_id:
            self.client.log_dict(self.run_id, obj, name)

    def log_text(self, text: str, name: str) -> None:
        if self.run_id:
            self.client.log_text(self.run_id, text, name)

    def log_image(self, image, name: str) -> None:
        if self.run_id:
            self.client.log_image(self.run_id, image, name)

    def log_artifacts(self, folder: Path, path: str) -> None:
        if self.run_id:
            self.client.log_artifacts(self.run_id, str(folder), path)

    def _on_signal(self, signum, frame):
        self.killed = True
        raise KeyboardInterrupt(f"signal {signum}")

    def __exit__(self, exc_type, exc, tb) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            default = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
            signal.signal(sig, default)
        if self.run_id is None:
            return
        # Lightning turns Ctrl-C into sys.exit(1) raised while handling the KeyboardInterrupt
        interrupts = (KeyboardInterrupt, SIGTERMException)
        killed = self.killed or isinstance(exc, interrupts) or (
            isinstance(exc, SystemExit) and isinstance(exc.__context__, interrupts))
        status = "FINISHED" if exc is None else "KILLED" if killed else "FAILED"
        if exc is not None:
            error = f"{exc_type.__name__}: {exc}"
            self.client.set_tag(self.run_id, "dataeff.error", error[:MAX_TAG])
        self.client.set_terminated(self.run_id, status)
        if killed and self.parent_id:  # an interrupted job ends the whole sweep
            self.client.set_terminated(self.parent_id, "KILLED")
        log.info("MLflow run %s: %s", self.run_id, status)


def job_overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def run_name() -> str | None:
    if not HydraConfig.initialized():
        return None
    hydra = HydraConfig.get()
    if hydra.mode == RunMode.MULTIRUN:
        return f"{hydra.job.num}: {hydra.job.override_dirname}"[:250]
    return Path(hydra.runtime.output_dir).name


def parent_run_id() -> str | None:
    """The sweep's parent run, which `SweepRun` wrote into the sweep directory."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    marker = Path(HydraConfig.get().sweep.dir) / PARENT_FILE
    return marker.read_text().strip() if marker.exists() else None


class SweepRun(Callback):
    """Hydra callback: a multirun is one parent MLflow run, its jobs are the children."""

    def __init__(self, tracking_uri: str, experiment_name: str,
                 artifact_location: str | None = None, report: DictConfig | None = None):
        self.tracking_uri, self.experiment_name = tracking_uri, experiment_name
        self.artifact_location, self.report = artifact_location, report
        self.run_id: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        client = MlflowClient(self.tracking_uri)
        exp = experiment_id(client, self.experiment_name, self.artifact_location)
        sweep_dir = Path(config.hydra.sweep.dir)
        overrides = " ".join(config.hydra.overrides.task)
        run = client.create_run(exp, run_name=f"sweep {sweep_dir.name}", tags={
            "dataeff.sweep_dir": str(sweep_dir), "dataeff.overrides": overrides[:MAX_TAG]})
        self.run_id = run.info.run_id
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / PARENT_FILE).write_text(self.run_id)
        atexit.register(self._close, "FAILED")  # the sweep raised before on_multirun_end
        log.info("MLflow parent run %s for sweep %s", self.run_id, sweep_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        if self.report is not None:
            self._write_report(Path(config.hydra.sweep.dir) / "report")
        self._close("FINISHED")

    def _write_report(self, out_dir: Path) -> None:
        """The study's report (table, curves, multipliers) as files and as parent-run artifacts."""
        from dataeff.report import write_report

        try:
            path = write_report(self.experiment_name, self.run_id, tracking_uri=self.tracking_uri,
                                out_dir=out_dir, **OmegaConf.to_container(self.report, resolve=True))
        except UserError as err:  # e.g. every job failed: the sweep's runs are still there to inspect
            log.warning("No study report: %s", err)
            MlflowClient(self.tracking_uri).set_tag(self.run_id, "dataeff.report_error", str(err)[:MAX_TAG])
            return
        print(path.read_text(encoding="utf-8"))
        log.info("Study report in %s (and in the parent run's artifacts under report/)", out_dir)

    def _close(self, default: str) -> None:
        """Terminate the parent once: FAILED if any child failed, KILLED if one was killed."""
        client = MlflowClient(self.tracking_uri)
        parent = client.get_run(self.run_id)
        if parent.info.status != "RUNNING":
            return
        children = client.search_runs([parent.info.experiment_id],
                                      f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{self.run_id}'")
        statuses = {child.info.status for child in children}
        status = next((s for s in ("KILLED", "FAILED") if s in statuses), default)
        client.set_tag(self.run_id, "dataeff.children", str(len(children)))
        client.set_terminated(self.run_id, status)
