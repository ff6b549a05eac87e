"""MLflow conventions: one run per job, a parent run per sweep, honest run status.

A job's run carries the flattened resolved config as params, the ablation axes as tags,
`config.yaml` as an artifact and the git commit; it ends FINISHED, FAILED or KILLED. A resume
(`ckpt_path=`) continues the same run as a new attempt, recorded beside the original launch.
Only the rank-0 process talks to MLflow, so a DDP job is still one run.
"""

from __future__ import annotations

import json
import logging
import signal
import tempfile
import time
from pathlib import Path

import numpy as np
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_PARENT_RUN_ID
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import MisconfigurationException, SIGTERMException

from dataeff.building import lightning_refusal
from dataeff.errors import UserError
from dataeff.resources import fault_message
from dataeff.runs.footprint import settle_outputs
from dataeff.runs.keys import job_place
from dataeff.runs.liveness import process_tags
from dataeff.runs.naming import (
    MAX_TAG,
    axis_tags,
    flatten,
    git_commit,
    job_overrides,
    parent_run_id,
    run_name,
)
from dataeff.runs.outbox import OUTBOX, DeliveringClient
from dataeff.runs.resuming import resumable_run
from dataeff.runs.stopping import catch_signals, ignore_signals, restore_signals
from dataeff.runs.store import experiment_id, redact
from dataeff.runs.tags import (
    ATTEMPTS_TAG,
    DISK_TAG,
    ERROR_TAG,
    JOB_KEY_TAG,
    JOB_PLACE_TAG,
    OUTPUT_DIR_TAG,
    OVERRIDES_TAG,
    SMOKE_TAG,
    attempt_tag,
)

log = logging.getLogger(__name__)


class JobRun:
    """Context manager owning a job's MLflow run: create (or resume), describe, terminate.

    `checkpoint` is the already-read `ckpt_path` checkpoint (None for a new run): it is checked
    against this store and task before the run it belongs to is touched."""

    def __init__(self, cfg: DictConfig, checkpoint: dict | None = None, job_key: str = ""):
        self.cfg, self.mlflow_cfg, self.checkpoint = cfg, cfg.logger.mlflow, checkpoint
        self.job_key = job_key  # dataeff.runs.keys: what a continued sweep looks jobs up by
        self.run_id: str | None = None
        self.parent_id: str | None = None
        self.signal: int | None = None
        self.attempt = 1
        self.logged_steps: dict[str, int] = {}  # metric -> last step an earlier attempt logged
        self.client: MlflowClient | None = None
        self.artifact_uri: str | None = None  # known while the store answers, for after an outage
        self.handlers: dict[int, object] = {}  # what catch_signals replaced, restored when the run ends

    def __enter__(self) -> JobRun:
        if rank_zero_only.rank != 0:
            return self
        self.client = MlflowClient(self.mlflow_cfg.tracking_uri)
        if self.checkpoint is not None:
            self.run_id = self._resume()
        else:
            self.run_id = self._create_run()
        try:
            self._describe()
        except BaseException as err:  # e.g. an unwritable artifact folder: never left RUNNING
            self._finish(err)
            if isinstance(err, (OSError, MlflowException)):
                where = self.client.get_run(self.run_id).info.artifact_uri
                raise UserError(f"The run's artifacts cannot be written to {where} ({err}). Point "
                                "DATAEFF_ROOT (or logger.mlflow.artifact_location= for a new study) at a "
                                "writable folder.") from None
            raise
        # from here on, an outage of the store never stops the job (dataeff.runs.outbox)
        self.client = DeliveringClient(self.client, Path(self.cfg.paths.output_dir) / OUTBOX)
        self.handlers = catch_signals(self._on_signal)  # a sweep's, or none: handed back at the end
        return self

    def _create_run(self) -> str:
        exp = experiment_id(self.client, self.mlflow_cfg.experiment_name,
                            self.mlflow_cfg.get("artifact_location"))
        tags = {**axis_tags(self.cfg), **process_tags(), ATTEMPTS_TAG: "1",
                OVERRIDES_TAG: redact(" ".join(job_overrides()))[:MAX_TAG], JOB_KEY_TAG: self.job_key,
                JOB_PLACE_TAG: job_place(job_overrides())}
        if self.cfg.trainer.get("fast_dev_run"):
            tags[SMOKE_TAG] = "true"
        self.parent_id = parent_run_id()
        if self.parent_id:
            tags[MLFLOW_PARENT_RUN_ID] = self.parent_id
        commit = git_commit(self.cfg.paths.root_dir)
        if commit:
            tags[MLFLOW_GIT_COMMIT] = commit
        run = self.client.create_run(exp, tags=tags, run_name=run_name())
        self.artifact_uri = run.info.artifact_uri
        log.info("MLflow run %s in experiment %r (%s)", run.info.run_id,
                 self.mlflow_cfg.experiment_name, self.mlflow_cfg.tracking_uri)
        return run.info.run_id

    def _resume(self) -> str:
        """The checkpoint's run, checked first; then a new attempt is recorded on it."""
        run = resumable_run(self.client, self.checkpoint, self.cfg)
        tags, self.artifact_uri = run.data.tags, run.info.artifact_uri
        attempt = self.attempt = int(tags.get(ATTEMPTS_TAG, "1")) + 1
        previous = run.info.status
        if previous == "RUNNING":
            previous = "RUNNING (its process died without a word: kill -9, out of memory, lost node)"
        record = {ATTEMPTS_TAG: str(attempt), **process_tags(),
                  attempt_tag(attempt, "overrides"): redact(" ".join(job_overrides()))[:MAX_TAG],
                  attempt_tag(attempt, "ckpt_path"): str(self.cfg.ckpt_path),
                  attempt_tag(attempt, "previous_status"): previous}
        if ERROR_TAG in tags:
            record[attempt_tag(attempt, "previous_error")] = tags[ERROR_TAG]
            self.client.delete_tag(run.info.run_id, ERROR_TAG)
        for key, value in record.items():
            self.client.set_tag(run.info.run_id, key, value)
        self.client.update_run(run.info.run_id, status="RUNNING")
        self.logged_steps = {key: max(m.step for m in self.client.get_metric_history(run.info.run_id, key))
                             for key in run.data.metrics}
        self.parent_id = tags.get(MLFLOW_PARENT_RUN_ID)
        log.info("Resuming MLflow run %s (attempt %d)", run.info.run_id, attempt)
        return run.info.run_id

    def _describe(self) -> None:
        """Params (only new ones on resume: MLflow params are write-once) and the config, which a
        resume logs beside the original as `attempts/<n>/config.yaml`."""
        resolved = OmegaConf.to_container(self.cfg, resolve=True)
        logged = self.client.get_run(self.run_id).data.params
        params = [Param(k[:250], v) for k, v in flatten(resolved).items() if k not in logged]
        for start in range(0, len(params), 100):  # MLflow's batch limit
            self.client.log_batch(self.run_id, params=params[start:start + 100])
        self.client.set_tag(self.run_id, OUTPUT_DIR_TAG, self.cfg.paths.output_dir)
        folder = "" if self.checkpoint is None else f"attempts/{self.attempt}"
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "config.yaml"
            path.write_text(redact(OmegaConf.to_yaml(resolved)))
            self.client.log_artifact(self.run_id, str(path), folder or None)

    def set_tags(self, tags: dict) -> None:
        if self.run_id:
            for key, value in tags.items():
                self.client.set_tag(self.run_id, key, str(value)[:MAX_TAG])

    def log_metrics(self, values: dict[str, float], step: int = 0) -> None:
        """Metrics the app computes outside Lightning (an audit, an active-learning loop's rounds)."""
        if self.run_id:
            now = int(time.time() * 1000)
            self.client.log_batch(self.run_id, metrics=[Metric(key, float(value), now, step)
                                                        for key, value in values.items()])

    def log_json(self, obj, name: str) -> None:
        self.log_text(json.dumps(obj, indent=2), name)

    def log_text(self, text: str, name: str) -> None:
        """A file in the job's output folder, and the same file as a run artifact."""
        if self.run_id:
            path = Path(self.cfg.paths.output_dir) / name
            path.write_text(text, encoding="utf-8")
            self.client.log_artifact(self.run_id, str(path))

    def log_image(self, image: np.ndarray, name: str) -> None:
        """An HxWxC array (floats in [0, 1] or bytes) as a PNG, like `log_text`."""
        if self.run_id:
            path = Path(self.cfg.paths.output_dir) / name
            if image.dtype != np.uint8:
                image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
            Image.fromarray(image).save(path)
            self.client.log_artifact(self.run_id, str(path))

    def log_artifacts(self, folder: Path, path: str) -> None:
        if self.run_id:
            self.client.log_artifacts(self.run_id, str(folder), path)

    def _on_signal(self, signum, frame):
        if self.signal is not None:  # Ctrl-C and the sweep's SIGTERM: the first one stops the job
            return
        self.signal = signum
        # While Lightning trains, its own handler runs first and stops the loop at the next batch
        # boundary (SIGTERMException); raising here too could cut an MLflow write in half.
        if signal.getsignal(signum) == self._on_signal:
            raise KeyboardInterrupt(f"signal {signum}")

    @property
    def exit_code(self) -> int:
        """The shell's convention for a job a signal ended: 130 for Ctrl-C, 143 for SIGTERM, 129 for
        SIGHUP."""
        return 128 + (self.signal or signal.SIGINT)

    def _note_signal(self, exc: BaseException | None) -> None:
        """Lightning's own SIGTERM handler can be the one that stopped the job (it may come before
        ours): the run is still one a SIGTERM ended."""
        stopped_by = (exc, exc.__context__) if exc is not None else ()
        if self.signal is None and any(isinstance(cause, SIGTERMException) for cause in stopped_by):
            self.signal = signal.SIGTERM

    def __exit__(self, exc_type, exc, tb) -> None:
        self._finish(exc)
        self._end_job(exc)

    def _finish(self, exc: BaseException | None) -> None:
        if self.run_id is None:
            return
        ignore_signals()  # a second signal must not cut the run's last writes short
        self._note_signal(exc)
        try:
            self._close(exc)
        finally:
            restore_signals(self.handlers)

    def _end_job(self, exc: BaseException | None) -> None:
        """The job's end as a shell and a user expect it: a signal's exit status (130 for Ctrl-C,
        143 for SIGTERM), and a full disk or memory as one paragraph that says what was kept."""
        if isinstance(exc, (KeyboardInterrupt, SystemExit, SIGTERMException)) and self.killed(exc):
            raise SystemExit(self.exit_code) from None
        message = fault_message(exc, self.cfg) if isinstance(exc, Exception) else None
        if isinstance(exc, MisconfigurationException):  # found once training runs (a monitor key)
            message = lightning_refusal(exc)
        if message is not None:
            raise UserError(message + self.lost_note()) from None

    def settle_disk(self, keep: str) -> None:
        """Once the job's work is done: its weights stay once (`keep_checkpoints`), and its footprint
        is a tag. Rank 0's, which owns the run."""
        if self.run_id is None:
            return
        linkable = not (isinstance(self.client, DeliveringClient) and self.client.outbox.pending())
        megabytes = settle_outputs(self.cfg.paths.output_dir, keep, self.artifact_uri, linkable)
        self.set_tags({DISK_TAG: round(megabytes, 1)})

    def _close(self, exc: BaseException | None) -> None:
        if isinstance(self.client, DeliveringClient):
            self.client.flush()  # the queued metrics first: the status comes last
        status = "FINISHED" if exc is None else "KILLED" if self.killed(exc) else "FAILED"
        if exc is not None:
            self.client.set_tag(self.run_id, ERROR_TAG, redact(self.describe_error(exc))[:MAX_TAG])
        self.client.set_terminated(self.run_id, status)
        if status == "KILLED" and self.parent_id and self.parent_id == parent_run_id():  # this sweep only
            self.client.set_terminated(self.parent_id, "KILLED")
        log.info("MLflow run %s: %s", self.run_id, status)
        if isinstance(self.client, DeliveringClient):
            self.client.send_kept(wait_s=self.mlflow_cfg.outage_wait_s if status != "KILLED" else 0)
            if self.client.outbox.pending():
                self._say_kept(status)

    def _say_kept(self, status: str) -> None:
        outbox = self.client.outbox
        message = (f"The MLflow store {self.mlflow_cfg.tracking_uri} stopped answering during this run; "
                   f"{outbox.pending()} writes (metrics, tags, artifacts and its final status, "
                   f"{status}) are kept in {outbox.folder}, so nothing is lost. Once the store is back, "
                   f"send them with: dataeff-store replay {self.cfg.paths.output_dir}")
        log.warning(message)

    def describe_error(self, exc: BaseException) -> str:
        if self.signal is not None:
            return f"Stopped by {signal.Signals(self.signal).name}"
        if self.killed(exc):
            return "Interrupted (KeyboardInterrupt)"
        return fault_message(exc, self.cfg) or f"{type(exc).__name__}: {exc}"

    def lost_note(self) -> str:
        """What neither the store nor the outbox could take (both on a full disk), for the last words."""
        lost = self.client.outbox.lost if isinstance(self.client, DeliveringClient) else []
        if not lost:
            return ""
        status = " and its final status" if "set_terminated" in lost else ""
        return (f" {len(lost)} write(s) of run {self.run_id}{status} could not be recorded: the store did "
                "not take them and its outbox could not keep them. Once there is room, "
                "`dataeff-store mark-dead` marks the run FAILED if it still shows RUNNING.")

    def killed(self, exc: BaseException | None) -> bool:
        # Lightning turns Ctrl-C into sys.exit(1) raised while handling the KeyboardInterrupt
        interrupts = (KeyboardInterrupt, SIGTERMException)
        return self.signal is not None or isinstance(exc, interrupts) or (
            isinstance(exc, SystemExit) and isinstance(exc.__context__, interrupts))
