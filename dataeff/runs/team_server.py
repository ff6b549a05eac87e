"""`dataeff-store server`: a team's tracking server on one machine, MLflow in front of PostgreSQL.

The first start creates a PostgreSQL cluster in `<folder>/postgres` (user `dataeff`, a generated
password in `<folder>/postgres/password`) and its `mlflow` database; every start runs it on
loopback, then `mlflow server` with its runs there and its artifacts in `<folder>/artifacts`.
Jobs log to `http://<host>:<port>`, or straight to the database with the URI it prints.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from dataeff.runs.database import with_driver
from dataeff.runs.local_postgres import LocalPostgres

DATABASE = "mlflow"


def serve(folder: Path, port: int, db_port: int, host: str = "127.0.0.1") -> int:
    """Start the database (created on the first run) and the server; stop both on Ctrl-C or
    SIGTERM."""
    database = LocalPostgres(folder / "postgres", db_port)
    database.init()
    started = database.start()
    try:
        database.create_database(DATABASE)
        store = with_driver(database.uri(DATABASE, with_password=False))
        print(f"MLflow server: http://{host}:{port} (export MLFLOW_TRACKING_URI=http://{host}:{port})\n"
              f"its runs in PostgreSQL: {store} (the password: {database.folder / 'password'})\n"
              f"its artifacts: {(folder / 'artifacts').resolve()}", flush=True)
        command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store,
                   "--artifacts-destination", str((folder / "artifacts").resolve()),
                   "--host", host, "--port", str(port)]
        server = subprocess.Popen(command, env={**os.environ, "PGPASSWORD": database.password})
        signal.signal(signal.SIGTERM, lambda *_: server.terminate())
        try:
            return server.wait()
        except KeyboardInterrupt:  # the terminal's Ctrl-C reached the server too
            return server.wait()
    finally:
        if started:  # a cluster that was already running is someone else's to stop
            database.stop()
