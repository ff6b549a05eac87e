"""The MLflow store a job talks to: its URI without credentials, created once, checked early.

- Credentials in a tracking URI (`http://user:password@host`) move to MLflow's own
  `MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD`; the URI that is logged, printed and
  handed on (to chained jobs, the report) carries none.
- A SQLite store is created and migrated once, under a file lock, before any run exists: jobs
  started together on a fresh store otherwise race in MLflow's schema migration and break it.
- A PostgreSQL store: `dataeff.runs.database`.
- A tracking server that does not answer fails the job within seconds, not after minutes of
  retries; a request during training gives up after 2 retries (about 3 s when the server is
  down, about 30 s when it hangs), and `dataeff.runs.outbox` keeps what it carried.
"""

from __future__ import annotations

import os
import re
import sqlite3
from contextlib import closing
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from filelock import FileLock
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from dataeff.errors import UserError
from dataeff.runs.database import is_postgres, open_postgres

# the userinfo of a URI: up to the last @ before the host (a password may hold @ or /)
USERINFO = re.compile(r"(\b[a-zA-Z][\w+.-]*://)\S*@(?=[^\s@/]+(?:[/:\s]|$))")
# a job's requests to a server: a few quick retries instead of MLflow's minutes-long default
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
SQLITE_HEADER = b"SQLite format 3\x00"
MLFLOW_TABLES = {"alembic_version", "experiments", "runs"}  # what every MLflow SQL store holds


def default_tracking_uri() -> str:
    """Where jobs log when nothing else is said: $MLFLOW_TRACKING_URI, else the SQLite store in
    $DATAEFF_ROOT (or the current folder), as `conf/logger/mlflow.yaml` has it."""
    root = os.environ.get("DATAEFF_ROOT") or os.getcwd()
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(root).resolve()}/mlflow.db"


def redact(text: str) -> str:
    """`scheme://user:password@host` -> `scheme://***@host` anywhere in `text`."""
    return USERINFO.sub(r"\1***@", text)


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def open_store(uri: str) -> str:
    """Ready the store at `uri` for this process; return the URI to use from now on."""
    uri = take_credentials(uri)
    if uri.startswith("sqlite:///"):
        create_sqlite(uri)
    elif is_postgres(uri):
        uri = open_postgres(uri)
    elif is_server(uri):
        for name, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)
        check_server(uri)
    return uri


def take_credentials(uri: str) -> str:
    """The URI without its userinfo, which goes to the variables MLflow reads for basic auth."""
    parts = urlsplit(uri)
    if not is_server(uri) or not parts.username:
        return uri
    os.environ["MLFLOW_TRACKING_USERNAME"] = unquote(parts.username)
    if parts.password is not None:
        os.environ["MLFLOW_TRACKING_PASSWORD"] = unquote(parts.password)
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=host))


def create_sqlite(uri: str) -> None:
    """Create (or migrate) the SQLite store once, whoever asks first; the rest wait for it."""
    path = Path(uri.removeprefix("sqlite:///"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{path}.lock", timeout=300):
            refuse_foreign_file(path)  # under the lock: a store half created by another job is no stranger
            MlflowClient(uri).search_experiments(max_results=1)
    except (OSError, MlflowException) as err:
        raise UserError(
            f"The MLflow store {path} cannot be opened or created ({str(err).splitlines()[0][:200]}). "
            "Point DATAEFF_ROOT at a writable folder, or MLFLOW_TRACKING_URI at another store.") from None


def refuse_foreign_file(path: Path) -> None:
    """A file at the store's path that is not MLflow's is left untouched: MLflow would add its
    tables to another program's database, or fail on a file that is no database with its own
    traceback. Read only: the file is opened read-only, and only when it looks like SQLite."""
    if path.is_dir():
        raise UserError(f"The MLflow store {path} is a folder, not a file. Point MLFLOW_TRACKING_URI at a "
                        f"file in it (sqlite:///{path}/mlflow.db), or DATAEFF_ROOT at the folder.")
    if not path.is_file() or path.stat().st_size == 0:
        return  # nothing there yet (or an empty file SQLite treats as a new database)
    fix = ("Point MLFLOW_TRACKING_URI (or DATAEFF_ROOT) at a store of MLflow's or at a new file; dataeff "
           "left this one as it was.")
    with path.open("rb") as file:
        head = file.read(len(SQLITE_HEADER))
    if head != SQLITE_HEADER:
        raise UserError(f"The MLflow store {path} is not an SQLite database (its first bytes are "
                        f"{head[:8]!r}, not SQLite's header). {fix}")
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error as err:
        raise UserError(f"The MLflow store {path} is an SQLite file that cannot be read ({err}). "
                        f"{fix}") from None
    if tables and not tables >= MLFLOW_TABLES:
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise UserError(f"The MLflow store {path} is another program's SQLite database (its tables: "
                        f"{shown}); MLflow would add its own tables to it. {fix}")


def check_server(uri: str) -> None:
    """One request, no retries, a short timeout: a server that is down is said at once."""
    saved = {name: os.environ.get(name) for name in HTTP_DEFAULTS}
    os.environ.update({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"})
    try:
        MlflowClient(uri).search_experiments(max_results=1)
    except Exception as err:  # connection refused, timeout, 401/403, not an MLflow server
        reason = redact(str(err).splitlines()[0])[:300] if str(err) else type(err).__name__
        raise UserError(
            f"The MLflow tracking server {uri} did not answer ({reason}). Start it (mlflow server "
            "--host ... --port ...), fix MLFLOW_TRACKING_URI (credentials go in "
            "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD), or unset it to log to the local "
            "SQLite store.") from None
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def experiment_id(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    """Get or create the study's experiment; parallel jobs may race to create it."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    if is_server(client.tracking_uri):
        artifact_location = None  # the server's own artifact store (mlflow-artifacts:), seen by all
    elif artifact_location and "://" not in artifact_location:
        artifact_location = Path(artifact_location).resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=artifact_location,
                                        tags={"mlflow.experimentKind": "custom_model_development"})
    except MlflowException:  # another job created it a moment ago
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id
