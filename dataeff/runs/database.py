"""A team's MLflow store on PostgreSQL (`MLFLOW_TRACKING_URI=postgresql://user:password@host/db`),
written to by the jobs directly or through an `mlflow server` in front of it.

- The password leaves the URI for libpq's own `PGPASSWORD`, which MLflow's SQLAlchemy store and
  every job started from this one read; the URI that is logged, printed and handed on has none,
  and names the driver (`postgresql+psycopg2://`: SQLAlchemy 2.1 would look for psycopg 3).
- A database that is down, or refuses the user, stops the job at once (`PGCONNECT_TIMEOUT`, 5 s
  unless set) with one paragraph, not after MLflow's retries.
- The schema is created and migrated once, under a PostgreSQL advisory lock: jobs started together
  on a fresh database otherwise race in MLflow's migrations, as they do on SQLite.
"""

from __future__ import annotations

import logging
import os
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg2
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy.exc import SQLAlchemyError

from dataeff.errors import UserError

SCHEMES = ("postgresql://", "postgresql+psycopg2://", "postgres://")
MIGRATION_LOCK = 0x64617461  # any bigint, the same for every dataeff job: "data"
CONNECT_TIMEOUT_S = "5"
LOCK_TIMEOUT = "5min"  # a job stuck creating the schema does not hold the others forever


def is_postgres(uri: str) -> bool:
    return uri.startswith(SCHEMES)


def take_password(uri: str) -> str:
    """The URI without its password, which goes to `PGPASSWORD`."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    os.environ["PGPASSWORD"] = unquote(parts.password)
    user, host = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{user.split(':', 1)[0]}@{host}"))


def with_driver(uri: str) -> str:
    return "postgresql+psycopg2://" + uri.split("://", 1)[1]


def libpq_dsn(uri: str) -> str:
    """The URI as libpq reads it (SQLAlchemy's `+psycopg2` and the old `postgres:` scheme dropped)."""
    return "postgresql://" + uri.split("://", 1)[1]


def open_postgres(uri: str) -> str:
    """Check the database answers, create MLflow's schema once; the URI to use from now on."""
    uri = with_driver(take_password(uri))
    os.environ.setdefault("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT_S)
    # MLflow logs a lost connection with its traceback; dataeff's outbox says it in one line
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    try:
        connection = psycopg2.connect(libpq_dsn(uri))
    except psycopg2.Error as err:
        raise UserError(f"The PostgreSQL store {uri} cannot be reached or refused the connection "
                        f"({reason(err)}). Start the database (dataeff-store server starts a local one), "
                        "or fix MLFLOW_TRACKING_URI: postgresql://user:password@host:port/database, the "
                        "password in it or in PGPASSWORD.") from None
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
            cursor.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                MlflowClient(uri).search_experiments(max_results=1)  # creates the schema when it is new
            except (MlflowException, SQLAlchemyError) as err:
                raise UserError(f"The PostgreSQL store {uri} answered but MLflow cannot use it "
                                f"({reason(err)}). A schema of an older MLflow: run `mlflow db upgrade "
                                "<uri>` once; no right to create tables: grant the user its own database "
                                "(CREATE DATABASE mlflow OWNER <user>).") from None
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    finally:
        connection.close()
    return uri


def reason(err: Exception) -> str:
    """The first line of a database error, without anything that could be a password."""
    line = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
    secret = os.environ.get("PGPASSWORD")
    return (line.replace(secret, "***") if secret and len(secret) > 3 else line)[:300]
