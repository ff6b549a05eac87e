"""Lightning's MLFlowLogger, bound to the MLflow run that `dataeff.tracking.JobRun` owns."""

from __future__ import annotations

import time
from collections.abc import Mapping

from pytorch_lightning.loggers import MLFlowLogger
from pytorch_lightning.utilities import rank_zero_only

HEARTBEAT_TAG = "dataeff.heartbeat"


class RunLogger(MLFlowLogger):
    """`MLFlowLogger` plus two promises a study relies on:

    - each metric keeps one value per step: after a resume, the steps an earlier attempt already
      logged (after its last checkpoint, before it died) are not logged a second time, and
      Lightning's `epoch`, which rides along with every logged batch of metrics, once per step;
    - a heartbeat tag (`dataeff.heartbeat`, unix seconds, at most once a minute) tells a running
      job from one whose process died, on any host.
    """

    heartbeat_every_s = 60.0

    def __init__(self, *args, logged_steps: Mapping[str, int] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.logged_steps = dict(logged_steps or {})
        self._last_beat = 0.0

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        at = step or 0
        fresh = {key: value for key, value in metrics.items() if at > self.logged_steps.get(key, -1)}
        if fresh:
            super().log_metrics(fresh, step)
            self.logged_steps.update(dict.fromkeys(fresh, at))
        if time.monotonic() - self._last_beat > self.heartbeat_every_s:
            self._last_beat = time.monotonic()
            self.experiment.set_tag(self.run_id, HEARTBEAT_TAG, str(int(time.time())))
