"""MLflow writes of one job that survive a tracking-server outage.

`DeliveringClient` wraps the job's `MlflowClient`. Writes (metrics, tags, artifacts, the final
status) are sent as usual; when the server is down they are appended, in order, to an outbox in
the job's output folder (`mlflow_outbox/outbox.jsonl`, artifacts referenced or copied beside it)
and training goes on. Metrics are sent from a background thread, so a training step never waits on
the network; a write from the main thread waits at most once per outage (MLflow's short retries,
see `dataeff.runs.store`). While the outbox holds anything, later writes queue behind it (order is
kept); every `retry_after_s` the background thread sends it again, and once the server is back the
job catches up by itself. A job that ends during an outage waits a while for the store (a server
being restarted); whatever is still there after that is sent by `dataeff-store replay <output dir>`.
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import requests
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import OperationalError

from dataeff.runs.stopping import restore_signals

log = logging.getLogger(__name__)
OUTBOX = "mlflow_outbox"
WAIT_STEP_S = 3.0  # how often a job that ends during an outage asks the store again
WAIT_ENDERS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C, kill: either ends that wait


def is_outage(err: BaseException) -> bool:
    """A store that cannot be reached (or is busy), as opposed to a request it refuses."""
    unreachable = (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError,
                   OperationalError)  # a database store's connection lost (PostgreSQL restarted)
    if isinstance(err, unreachable):
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
        self.rejected = self.folder / "rejected.jsonl"  # writes the store refused outright
        self.uri_file = self.folder / "tracking_uri"  # where replay sends it, without credentials
        self.tracking_uri = tracking_uri
        self.lost: list[str] = []  # the writes (their ops) neither the store nor this file took

    def pending(self) -> int:
        return sum(1 for _ in self.path.open()) if self.path.exists() else 0

    def keep(self, op: str, run_id: str, kwargs: dict) -> None:
        """Append a write; one that cannot be kept either (the disk is full) is counted in `lost`."""
        try:
            self._append(op, run_id, kwargs)
        except OSError as err:
            if not self.lost:
                log.warning("The outbox %s cannot keep writes either (%s): they are counted and named at "
                            "the end", self.folder, err.strerror or err)
            self.lost.append(op)

    def _append(self, op: str, run_id: str, kwargs: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.tracking_uri and not self.uri_file.exists():
            self.uri_file.write_text(self.tracking_uri)
        kwargs = dict(kwargs)
        for key in ("metrics", "params", "tags"):
            if key in kwargs:
                kwargs[key] = [list(ENTITY_FIELDS[key](item)) for item in kwargs[key]]
        for key in ("local_path", "local_dir"):  # temporary files are copied, others referenced
            if key in kwargs:
                kwargs[key] = self._keep_file(Path(kwargs[key]))
        with self.path.open("a") as out:
            out.write(json.dumps({"op": op, "run_id": run_id, **kwargs}) + "\n")

    def _keep_file(self, path: Path) -> str:
        if not path.resolve().is_relative_to(Path(tempfile.gettempdir()).resolve()):
            return str(path)
        copy = self.folder / "files" / f"{time.time_ns()}" / path.name
        copy.parent.mkdir(parents=True)
        (shutil.copytree if path.is_dir() else shutil.copy2)(path, copy)
        return str(copy)

    def send(self, client) -> bool:
        """Send what is kept, in order (metrics merged into batches), skipping metric steps the run
        already has. True when all went; on an outage the rest stays for later. A write the store
        refuses outright is set aside in `rejected.jsonl` (and logged), not retried forever."""
        if not self.path.exists():
            return True
        entries = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
        logged: dict[tuple[str, str], set[int]] = {}
        done = 0
        for group in batches(entries):
            try:
                deliver(client, group, logged)
            except Exception as err:
                if is_outage(err):
                    self.path.write_text("".join(json.dumps(e) + "\n" for e in entries[done:]))
                    return False
                log.warning("The MLflow store refused a kept %s (%s); it is set aside in %s",
                            group[0]["op"], str(err).splitlines()[0][:200], self.rejected)
                with self.rejected.open("a") as out:
                    out.writelines(json.dumps(e) + "\n" for e in group)
            done += len(group)
        self.path.unlink()
        shutil.rmtree(self.folder / "files", ignore_errors=True)
        return True


# how each kind of entity is written to the outbox, and read back
ENTITY_FIELDS = {"metrics": lambda m: (m.key, m.value, m.timestamp, m.step),
                 "params": lambda p: (p.key, p.value), "tags": lambda t: (t.key, t.value)}
ENTITIES = {"metrics": Metric, "params": Param, "tags": RunTag}


def batches(entries: list[dict], size: int = 1000):
    """Runs of consecutive entries: metric-only writes of one run merged (1000 metrics a call)."""
    group: list[dict] = []
    for entry in entries:
        mergeable = (group and metrics_only(entry) and metrics_only(group[0])
                     and group[0]["run_id"] == entry["run_id"]
                     and sum(len(e["metrics"]) for e in group) + len(entry["metrics"]) <= size)
        if group and not mergeable:
            yield group
            group = []
        group.append(entry)
    if group:
        yield group


def metrics_only(entry: dict) -> bool:
    return entry["op"] == "log_batch" and not entry.get("params") and not entry.get("tags")


def deliver(client, group: list[dict], logged: dict) -> None:
    first = dict(group[0])
    op, run_id = first.pop("op"), first.pop("run_id")
    if op != "log_batch":
        getattr(client, op)(run_id, **first)
        return
    batch = {key: [ENTITIES[key](*values) for entry in group for values in entry.get(key, [])]
             for key in ENTITIES}
    batch["metrics"] = [m for m in batch["metrics"] if m.step not in steps_of(client, run_id, m.key, logged)]
    for m in batch["metrics"]:
        logged[(run_id, m.key)].add(m.step)
    if any(batch.values()):
        client.log_batch(run_id, **batch)


def steps_of(client, run_id: str, key: str, logged: dict) -> set[int]:
    """The steps of a metric already in the run (a write may have arrived before its reply failed)."""
    if (run_id, key) not in logged:
        logged[(run_id, key)] = {m.step for m in client.get_metric_history(run_id, key)}
    return logged[(run_id, key)]


class DeliveringClient:
    """An `MlflowClient` for one job whose writes survive an outage (see the module docstring);
    reads pass through. Only the background thread retries the outbox, so a write from the
    training loop waits on the network at most once per outage."""

    def __init__(self, client, outbox_dir: str | Path, retry_after_s: float = 30.0):
        self.client, self.retry_after_s = client, retry_after_s
        self.outbox = Outbox(outbox_dir, client.tracking_uri)
        self._lock = threading.RLock()
        self._last_try = 0.0
        self._closing = False
        self._queue: queue.Queue = queue.Queue()
        self._worker: threading.Thread | None = None

    def __getattr__(self, name):  # reads (get_run, search_runs, ...)
        return getattr(self.client, name)

    def log_batch(self, run_id, metrics=(), params=(), tags=(), synchronous=None):
        self._write("log_batch", run_id, metrics=list(metrics), params=list(params), tags=list(tags))

    def set_tag(self, run_id, key, value, synchronous=None):
        self._write("set_tag", run_id, key=key, value=value)

    def delete_tag(self, run_id, key):
        self._write("delete_tag", run_id, key=key)

    def log_artifact(self, run_id, local_path, artifact_path=None):
        self._write("log_artifact", run_id, local_path=str(local_path), artifact_path=artifact_path)

    def log_artifacts(self, run_id, local_dir, artifact_path=None):
        self._write("log_artifacts", run_id, local_dir=str(local_dir), artifact_path=artifact_path)

    def set_terminated(self, run_id, status=None):
        self._write("set_terminated", run_id, status=status)

    def send_later(self, op: str, run_id: str, **kwargs) -> None:
        """Queue a write for the background thread (metrics: never wait on the network)."""
        if self._worker is None:
            self._worker = threading.Thread(target=self._drain, name="mlflow-delivery", daemon=True)
            self._worker.start()
        self._queue.put((op, run_id, kwargs))

    def flush(self, timeout_s: float = 60.0) -> None:
        """Send what is queued and stop the thread; what cannot be sent in time is kept."""
        if self._worker is None:
            return
        self._queue.put(None)
        self._worker.join(timeout_s)
        self._closing = True  # a worker still busy keeps the rest instead of sending it
        with self._lock:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    self.outbox.keep(*item)
        self._worker = None

    def send_kept(self, wait_s: float = 0.0) -> None:
        """The end of the job: send what is kept, so a store that is back needs no replay. While
        the store does not answer, try again every few seconds for up to `wait_s` (a server being
        restarted: the sweep's next job then finds it up); a signal (Ctrl-C) ends the wait."""
        stop = threading.Event()
        in_main = threading.current_thread() is threading.main_thread()  # where signals are handled
        enders = WAIT_ENDERS if wait_s and in_main else ()
        handlers = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in enders}
        deadline, said = time.monotonic() + wait_s, False
        try:
            with self._lock:
                while self.outbox.path.exists():
                    self._last_try = 0.0
                    if self._caught_up() or time.monotonic() >= deadline or stop.is_set():
                        return
                    if not said:
                        said = True
                        log.warning("The MLflow store does not answer; this job waits up to %.0f s for it "
                                    "(logger.mlflow.outage_wait_s) before it keeps its last writes for "
                                    "dataeff-store replay. Ctrl-C ends the wait.", wait_s)
                    stop.wait(min(WAIT_STEP_S, max(0.0, deadline - time.monotonic())))
        finally:
            restore_signals(handlers)

    def _drain(self) -> None:
        while (item := self._queue.get()) is not None:
            op, run_id, kwargs = item
            try:
                if self._closing:
                    with self._lock:
                        self.outbox.keep(op, run_id, kwargs)
                else:
                    self._write(op, run_id, retry=True, **kwargs)
            except Exception:  # a refused write must not kill the thread; it is logged
                log.exception("MLflow refused %s for run %s", op, run_id)

    def _write(self, op: str, run_id: str, retry: bool = False, **kwargs) -> None:
        with self._lock:
            if self.outbox.path.exists() and not (retry and self._caught_up()):
                self.outbox.keep(op, run_id, kwargs)  # behind what is kept: order holds
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
        sent = self.outbox.send(self.client)
        self._last_try = time.monotonic()  # after: a slow failure does not count as waiting
        if sent:
            log.info("The MLflow store answers again; its kept writes were sent.")
        return sent
