"""How a RUNNING run tells a live job from one whose process died without a word (kill -9, out
of memory, a lost node): the host and pid it runs as, and a heartbeat tag while metrics flow."""

from __future__ import annotations

import os
import socket

HEARTBEAT_TAG = "dataeff.heartbeat"  # unix seconds, refreshed by the run's logger


def process_tags() -> dict[str, str]:
    return {"dataeff.host": socket.gethostname(), "dataeff.pid": str(os.getpid())}


def process_alive(tags: dict) -> bool:
    """Whether the process a run's tags name is alive (known only on the same host)."""
    if tags.get("dataeff.host") != socket.gethostname() or not tags.get("dataeff.pid"):
        return False
    try:
        os.kill(int(tags["dataeff.pid"]), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return int(tags["dataeff.pid"]) != os.getpid()
