"""How a RUNNING run tells a live job from one whose process died without a word (kill -9, out
of memory, a lost node): the host and pid it runs as, and a heartbeat tag while metrics flow."""

from __future__ import annotations

import os
import socket
import time

from dataeff.runs.tags import HEARTBEAT_TAG, HOST_TAG, PID_TAG

STALE_AFTER_S = 30 * 60


def process_tags() -> dict[str, str]:
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def process_alive(tags: dict) -> bool:
    """Whether the process a run's tags name is alive (known only on the same host)."""
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG):
        return False
    try:
        os.kill(int(tags[PID_TAG]), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return int(tags[PID_TAG]) != os.getpid()


def looks_dead(tags: dict, start_time_ms: int, stale_after_s: float = STALE_AFTER_S) -> bool:
    """A RUNNING run's process is gone: on this host, no such process; elsewhere, no heartbeat
    (or start) for `stale_after_s`."""
    if tags.get(HOST_TAG) == socket.gethostname():
        return not process_alive(tags)
    last_sign = int(tags.get(HEARTBEAT_TAG, start_time_ms // 1000))
    return time.time() - last_sign > stale_after_s
