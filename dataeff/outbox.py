"""MLflow writes of one job that survive a tracking-server outage.

`DeliveringClient` wraps the job's `MlflowClient`. Writes (metrics, tags, artifacts, the final
status) are sent as usual; when the server is down they are appended, in order, to an outbox in
the job's output folder (`mlflow_outbox/outbox.jsonl`, artifacts referenced or copied beside it)
and training goes on. Metrics are sent from a background thread, so a dead server never stalls a
training step. While the outbox holds anything, later writes queue behind it (order is kept);
every `retry_after_s` the outbox is sent again, and once the server is back the job catches up by
itself. Whatever is still there at the end is sent by `dataeff-store replay <output dir>`.
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import tempfile
import threading
import time
from pathlib import Path

import requests
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException

log = logging.getLogger(__name__)
OUTBOX = "mlflow_outbox"
# the writes a job makes during and after training, with their positional arguments after run_id
WRITE_ARGS = {"log_batch": ("metrics",), "set_tag": ("key", "value"), "delete_tag": ("key",),
              "log_artifact": ("local_path", "artifact_path"),
              "log_artifacts": ("local_dir", "artifact_path"), "set_terminated": ("status",)}


def is_outage(err: BaseException) -> bool:
    """A store that cannot be reached (or is busy), as opposed to a request it refuses."""
    if isinstance(err, (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)):
        return True
    if not isinstance(err, MlflowException):
        return False
    text = str(err.message)
    unreachable = text.startswith("API request to") and any(
        part in text for part in ("failed with exception", "failed with timeout", "error code 5"))
    return unreachable or err.error_code == "TEMPORARILY_UNAVAILABLE"


class Outbox:
    """An ordered file of MLflow writes not yet sent, for one run."""

    def __init__(self, folder: str | Path, tracking_uri: str | None = None):
        self.folder = Path(folder)
        self.path = self.folder / "outbox.jsonl"
        self.uri_file = self.folder / "tracking_uri"  # where replay sends it, without credentials
        self.tracking_uri = tracking_uri

    def pending(self) -> int:
        return sum(1 for _ in self.path.open()) if self.path.exists() else 0

    def keep(self, op: str, run_id: str, kwargs: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.tracking_uri and not self.uri_file.exists():
            self.uri_file.write_text(self.tracking_uri)
        kwargs = dict(kwargs)
        if op == "log_batch":
            kwargs["metrics"] = [[m.key, m.value, m.timestamp, m.step] for m in kwargs["metrics"]]
        for key in ("local_path", "local_dir"):  # temporary files are copied, others referenced
            if key in kwargs:
                kwargs[key] = self._keep_file(Path(kwargs[key]))
        with self.path.open("a") as out:
            out.write(json.dumps({"op": op, "run_id": run_id, **kwargs}) + "\n")

    def _keep_file(self, path: Path) -> str:
        if not str(path).startswith(tempfile.gettempdir()):
            return str(path)
        copy = self.folder / "files" / f"{time.time_ns()}" / path.name
        copy.parent.mkdir(parents=True)
        (shutil.copytree if path.is_dir() else shutil.copy2)(path, copy)
        return str(copy)

    def send(self, client) -> bool:
        """Send what is kept, in order (metrics merged into batches), skipping metric steps the run
        already has. True when all went; on an outage the rest stays for later."""
        if not self.path.exists():
            return True
        entries = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
        logged: dict[tuple[str, str], set[int]] = {}
        done = 0
        for group in batches(entries):
            try:
                deliver(client, group, logged)
            except Exception as err:
                if not is_outage(err):
                    raise
                self.path.write_text("".join(json.dumps(e) + "\n" for e in entries[done:]))
                return False
            done += len(group)
        self.path.unlink()
        return True


def batches(entries: list[dict], size: int = 1000):
    """Runs of consecutive entries: metric writes of one run merged (MLflow takes 1000 a call)."""
    group: list[dict] = []
    for entry in entries:
        mergeable = (entry["op"] == "log_batch" and group and group[0]["op"] == "log_batch"
                     and group[0]["run_id"] == entry["run_id"]
                     and sum(len(e["metrics"]) for e in group) + len(entry["metrics"]) <= size)
        if group and not mergeable:
            yield group
            group = []
        group.append(entry)
    if group:
        yield group


def deliver(client, group: list[dict], logged: dict) -> None:
    first = dict(group[0])
    op, run_id = first.pop("op"), first.pop("run_id")
    if op != "log_batch":
        getattr(client, op)(run_id, **first)
        return
    metrics = [Metric(*values) for entry in group for values in entry["metrics"]]
    fresh = [m for m in metrics if m.step not in steps_of(client, run_id, m.key, logged)]
    for m in fresh:
        logged[(run_id, m.key)].add(m.step)
    if fresh:
        client.log_batch(run_id, metrics=fresh)


def steps_of(client, run_id: str, key: str, logged: dict) -> set[int]:
    """The steps of a metric already in the run (a write may have arrived before its reply failed)."""
    if (run_id, key) not in logged:
        logged[(run_id, key)] = {m.step for m in client.get_metric_history(run_id, key)}
    return logged[(run_id, key)]


class DeliveringClient:
    """An `MlflowClient` whose writes never fail on an outage (see the module docstring); reads
    and everything else pass through."""

    def __init__(self, client, outbox_dir: str | Path, retry_after_s: float = 30.0):
        self.client, self.retry_after_s = client, retry_after_s
        self.outbox = Outbox(outbox_dir, client.tracking_uri)
        self._lock = threading.RLock()
        self._last_try = 0.0
        self._queue: queue.Queue = queue.Queue()
        self._worker: threading.Thread | None = None

    def __getattr__(self, name):
        if name in WRITE_ARGS:
            return lambda run_id, *args, **kwargs: self._write(name, run_id, *args, **kwargs)
        return getattr(self.client, name)

    def send_later(self, op: str, run_id: str, **kwargs) -> None:
        """Queue a write for the background thread (metrics: never wait on the network)."""
        if self._worker is None:
            self._worker = threading.Thread(target=self._drain, name="mlflow-delivery", daemon=True)
            self._worker.start()
        self._queue.put((op, run_id, kwargs))

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait for queued writes; what cannot be sent in time is kept in the outbox."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)
        while not self._queue.empty():  # the server is too slow: keep the rest for replay
            op, run_id, kwargs = self._queue.get_nowait()
            with self._lock:
                self.outbox.keep(op, run_id, kwargs)
            self._queue.task_done()

    def _drain(self) -> None:
        while True:
            op, run_id, kwargs = self._queue.get()
            try:
                self._write(op, run_id, **kwargs)
            except Exception:  # a refused write must not kill the thread; it is logged
                log.exception("MLflow refused %s for run %s", op, run_id)
            finally:
                self._queue.task_done()

    def _write(self, op: str, run_id: str, *args, **kwargs) -> None:
        kwargs = {**dict(zip(WRITE_ARGS[op], args)), **kwargs}
        kwargs.pop("synchronous", None)
        with self._lock:
            if self.outbox.path.exists() and not self._caught_up():
                self.outbox.keep(op, run_id, kwargs)
                return
            try:
                getattr(self.client, op)(run_id, **kwargs)
            except Exception as err:
                if not is_outage(err):
                    raise
                self._last_try = time.monotonic()
                log.warning("The MLflow store does not answer (%s); training goes on and its writes "
                            "are kept in %s until it is back.", str(err).splitlines()[0][:200],
                            self.outbox.path)
                self.outbox.keep(op, run_id, kwargs)

    def _caught_up(self) -> bool:
        """Send the outbox again if it is time; True when it is empty afterwards."""
        if time.monotonic() - self._last_try < self.retry_after_s:
            return False
        self._last_try = time.monotonic()
        if self.outbox.send(self.client):
            log.info("The MLflow store answers again; its kept writes were sent.")
            return True
        return False

