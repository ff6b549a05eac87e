"""Stopping a sweep: SIGTERM, SIGINT or SIGHUP to its main process stops every process the sweep started
(joblib's workers, submitit's jobs, DDP ranks), each job's run ends KILLED, and so does the parent.

Without this, a signal killed the main process alone: its parent run stayed RUNNING and a joblib
worker went on training for minutes. The workers get SIGTERM, which each job's `JobRun` turns into
a KILLED run and an `interrupted.ckpt`; a worker still alive after `GRACE_S` is killed.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from collections.abc import Callable

import psutil

log = logging.getLogger(__name__)
GRACE_S = 60  # time for a job to save interrupted.ckpt and end its run
POLL_S = 0.5
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)  # kill, Ctrl-C, the terminal closed


def stop_started_processes(runs_ended: Callable[[], bool], grace_s: float = GRACE_S) -> list[int]:
    """SIGTERM to every process this one started (at any depth). Those still alive once
    `runs_ended()` (every job closed its run: what is left are idle workers and joblib's resource
    trackers, which ignore SIGTERM), or after `grace_s`, get SIGKILL. Returns the pids killed
    while a run was still open."""
    started = psutil.Process().children(recursive=True)
    for process in started:
        with contextlib.suppress(psutil.Error):
            if not is_resource_tracker(process):  # they ignore SIGTERM, and exit with the sweep
                process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    alive = started
    while alive and time.monotonic() < deadline:
        _, alive = psutil.wait_procs(alive, timeout=POLL_S)
        if runs_ended():
            break
    unfinished = [] if runs_ended() else alive
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(alive, timeout=10)
    if unfinished:
        log.warning("%d process(es) of the sweep did not stop within %d s and were killed: %s",
                    len(unfinished), grace_s, ", ".join(str(process.pid) for process in unfinished))
    return [process.pid for process in unfinished]


def catch_signals(handler) -> dict[int, object]:
    """`handler` for SIGTERM, and for SIGINT and SIGHUP unless they are ignored (nohup ignores SIGHUP,
    a shell script's `&` SIGINT: the user asked the job to outlive them). SIGTERM is always caught, even
    when a parent ignored it: it is how a scheduler (SLURM preemption, `docker stop`, CI) stops a job,
    and Lightning stops on it anyway. Returns the handlers they had, for `restore_signals`."""
    caught = [sig for sig in SIGNALS if sig == signal.SIGTERM or signal.getsignal(sig) != signal.SIG_IGN]
    return {sig: signal.signal(sig, handler) for sig in caught}


def is_resource_tracker(process: psutil.Process) -> bool:
    """multiprocessing's and joblib's helper that frees shared semaphores: it holds no job."""
    return any("resource_tracker" in part for part in process.cmdline())


def ignore_signals() -> dict[int, object]:
    """Ignore SIGTERM and SIGINT (a second Ctrl-C while a run is being closed); returns the
    handlers they had, for `restore_signals`."""
    return {sig: signal.signal(sig, signal.SIG_IGN) for sig in SIGNALS}


def restore_signals(handlers: dict[int, object]) -> None:
    for sig, handler in handlers.items():
        signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
