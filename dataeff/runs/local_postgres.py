"""A PostgreSQL cluster in a folder, listening on loopback: the database of a team's MLflow server
(`dataeff-store server`) and of the tests. PostgreSQL refuses to run as root, so as root the
cluster belongs to the `postgres` system user that Debian's package creates."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import psycopg2
from psycopg2 import sql

from dataeff.errors import UserError

SYSTEM_USER = "postgres"


def binary(name: str) -> str:
    """A PostgreSQL server program: on the PATH, else Debian's newest /usr/lib/postgresql/<v>/bin."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                                                  key=lambda p: int(p.split("/")[4]), reverse=True)), None)
    if found is None:
        raise UserError(f"PostgreSQL's {name} is not installed: apt-get install postgresql (Debian, "
                        "Ubuntu), or point MLFLOW_TRACKING_URI at a PostgreSQL server you have.")
    return found


class LocalPostgres:
    """`folder` holds the cluster (data/), its socket and log; `password` is the `user`'s, kept in
    folder/password (readable by its owner only) so that the next start finds it."""

    def __init__(self, folder: Path, port: int = 5433, user: str = "dataeff"):
        self.folder, self.port, self.user = Path(folder).resolve(), port, user
        self.data, self.log = self.folder / "data", self.folder / "postgres.log"
        self.as_root = os.geteuid() == 0

    @property
    def password(self) -> str:
        return (self.folder / "password").read_text().strip()

    def uri(self, database: str, with_password: bool = True) -> str:
        secret = f":{self.password}" if with_password else ""
        return f"postgresql://{self.user}{secret}@127.0.0.1:{self.port}/{database}"

    def run(self, *command: str, check: bool = True) -> int:
        prefix = ["runuser", "-u", SYSTEM_USER, "--"] if self.as_root else []
        done = subprocess.run([*prefix, *command], capture_output=True, text=True)
        if done.returncode and check:
            raise UserError(f"{Path(command[0]).name} failed: {done.stderr.strip()[-300:]} (its log, once "
                            f"the server has started: {self.log}).")
        return done.returncode

    def init(self) -> None:
        """A new cluster with password authentication, unless the folder has one already."""
        if (self.data / "PG_VERSION").exists():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        secret = self.folder / "password"
        secret.write_text(secrets.token_urlsafe(18) + "\n")
        secret.chmod(0o600)
        if self.as_root:  # the server's own user owns the cluster (and reads the password once)
            shutil.chown(self.folder, SYSTEM_USER)
            shutil.chown(secret, SYSTEM_USER)
        self.run(binary("initdb"), "-D", str(self.data), "-U", self.user, f"--pwfile={secret}",
                 "--auth=scram-sha-256", "--encoding=UTF8", "--no-instructions")

    def running(self) -> bool:
        return self.run(binary("pg_ctl"), "-D", str(self.data), "status", check=False) == 0

    def start(self) -> bool:
        """Start the cluster unless it runs already; whether this call started it."""
        if self.running():
            return False
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder}"
        self.run(binary("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        return True

    def stop(self) -> None:
        self.run(binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def create_database(self, name: str) -> None:
        """An empty database, if it does not exist yet."""
        try:
            connection = psycopg2.connect(self.uri("postgres"))
        except psycopg2.Error as err:
            raise UserError(f"The PostgreSQL cluster in {self.folder} does not let its user in "
                            f"({str(err).strip().splitlines()[0][:200]}); see {self.log}.") from None
        connection.autocommit = True  # CREATE DATABASE runs outside a transaction
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cursor.fetchone() is None:
                    cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            connection.close()
