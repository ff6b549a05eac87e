"""A Hydra multirun as one MLflow parent run, its jobs the children, its report at the end."""

from __future__ import annotations

import atexit
import logging
from pathlib import Path

from hydra.experimental.callback import Callback
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from omegaconf import DictConfig, OmegaConf

from dataeff.errors import UserError
from dataeff.store import experiment_id, open_store, redact
from dataeff.tracking import MAX_TAG, PARENT_FILE

log = logging.getLogger(__name__)


class SweepRun(Callback):
    """Hydra callback: a multirun is one parent MLflow run, its jobs are the children."""

    def __init__(self, tracking_uri: str, experiment_name: str,
                 artifact_location: str | None = None, report: DictConfig | None = None):
        self.tracking_uri, self.experiment_name = tracking_uri, experiment_name
        self.artifact_location, self.report = artifact_location, report
        self.run_id: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self.tracking_uri = open_store(self.tracking_uri)
        client = MlflowClient(self.tracking_uri)
        exp = experiment_id(client, self.experiment_name, self.artifact_location)
        sweep_dir = Path(config.hydra.sweep.dir)
        overrides = redact(" ".join(config.hydra.overrides.task))
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
