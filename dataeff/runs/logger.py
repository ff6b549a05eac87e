"""Lightning's MLFlowLogger, bound to the MLflow run that `dataeff.runs.job_run.JobRun` owns."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

from lightning_fabric.utilities.logger import _add_prefix
from mlflow.entities import Metric
from pytorch_lightning.loggers import MLFlowLogger
from pytorch_lightning.utilities import rank_zero_only

from dataeff.runs.outbox import DeliveringClient
from dataeff.runs.tags import HEARTBEAT_TAG


class RunLogger(MLFlowLogger):
    """`MLFlowLogger` writing through the job's `DeliveringClient`, with the promises a study
    relies on:

    - metrics go out from a background thread and survive a server outage (`dataeff.runs.outbox`), so
      a training step never waits on the network;
    - each metric keeps one value per step: after a resume, the steps an earlier attempt already
      logged (after its last checkpoint, before it died) are not logged a second time, and
      Lightning's `epoch`, which rides along with every logged batch of metrics, once per step;
    - a heartbeat tag (`dataeff.heartbeat`, unix seconds, at most once a minute) tells a running
      job from one whose process died, on any host;
    - the run's status is left to `JobRun`, which sets it once the whole job (test, export) is done.
    """

    heartbeat_every_s = 60.0

    def __init__(self, *args, client: DeliveringClient | None = None,
                 logged_steps: Mapping[str, int] | None = None, outage_wait_s: float = 0.0, **kwargs):
        """`outage_wait_s` is the job's (`JobRun` waits at the end); it sits in this config group
        with the run's other settings."""
        super().__init__(*args, **kwargs)
        if client is not None:  # rank 0; the other ranks never log
            self._mlflow_client = client
        self.logged_steps = dict(logged_steps or {})
        self._last_beat = 0.0

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        at, now = step or 0, int(time.time() * 1000)
        named = {re.sub("[^a-zA-Z0-9_/. -]+", "", key): value  # the names MLflow accepts, as Lightning's
                 for key, value in _add_prefix(metrics, self._prefix, self.LOGGER_JOIN_CHAR).items()}
        fresh = [Metric(key, float(value), now, at) for key, value in named.items()
                 if not isinstance(value, str) and at > self.logged_steps.get(key, -1)]
        if fresh:
            self.experiment.send_later("log_batch", self.run_id, metrics=fresh)
            self.logged_steps.update({metric.key: at for metric in fresh})
        if time.monotonic() - self._last_beat > self.heartbeat_every_s:
            self._last_beat = time.monotonic()
            self.experiment.send_later("set_tag", self.run_id, key=HEARTBEAT_TAG, value=str(now // 1000))

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        if self._initialized and self._checkpoint_callback:
            self._scan_and_log_checkpoints(self._checkpoint_callback)
