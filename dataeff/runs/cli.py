"""dataeff-store: look after the MLflow store that jobs write to.

    dataeff-store replay outputs/mlm/runs/<time>     # send what a job kept while the store was down
    dataeff-store mark-dead --stale-after 30         # FAILED for RUNNING runs whose process is gone
    dataeff-store server --folder team-store         # a team's MLflow server on PostgreSQL (loopback)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from dataeff.errors import UserError
from dataeff.runs.liveness import looks_dead
from dataeff.runs.outbox import OUTBOX, Outbox
from dataeff.runs.store import default_tracking_uri, open_store
from dataeff.runs.tags import ERROR_TAG, OUTPUT_DIR_TAG, PID_TAG
from dataeff.runs.team_server import serve


def replay(folder: str, tracking_uri: str | None) -> str:
    """Send an output folder's kept writes, in order; say what happened."""
    path = Path(folder)
    outbox = Outbox(path if path.name == OUTBOX else path / OUTBOX)
    if not outbox.path.exists():
        return f"{folder}: nothing kept, nothing to send."
    uri = tracking_uri or (outbox.uri_file.read_text().strip() if outbox.uri_file.exists() else None)
    client = MlflowClient(open_store(uri or default_tracking_uri()))
    count = outbox.pending()
    if not outbox.send(client):
        raise UserError(f"{client.tracking_uri} stopped answering again; {outbox.pending()} of {count} "
                        f"writes are still kept in {outbox.folder}. Run this command again later.")
    return f"{folder}: sent {count} kept writes to {client.tracking_uri}."


def mark_dead(tracking_uri: str, stale_after_min: float) -> list[str]:
    """RUNNING job runs whose process is gone (same host) or silent for too long (any host)."""
    client = MlflowClient(open_store(tracking_uri))
    marked = []
    for run in running_runs(client):
        tags = run.data.tags
        if PID_TAG not in tags:
            continue  # a sweep's parent run, closed by its sweep
        if Outbox(Path(tags.get(OUTPUT_DIR_TAG, ".")) / OUTBOX).pending():
            marked.append(f"{run.info.run_id}: left RUNNING, it has writes kept from an outage; send them "
                          f"with dataeff-store replay {tags[OUTPUT_DIR_TAG]}")
            continue
        if looks_dead(tags, run.info.start_time, stale_after_min * 60):
            resume = Path(tags.get(OUTPUT_DIR_TAG, "<output dir>")) / "checkpoints" / "last.ckpt"
            client.set_tag(run.info.run_id, ERROR_TAG, "Its process died without a word (kill -9, out of "
                           f"memory, lost node); resume it with ckpt_path={resume}")
            client.set_terminated(run.info.run_id, "FAILED")
            marked.append(f"{run.info.run_id} ({run.info.run_name}): FAILED, its process is gone")
    return marked


def running_runs(client: MlflowClient):
    experiments = [e.experiment_id for e in client.search_experiments(max_results=1000)]
    token = None
    while experiments:
        page = client.search_runs(experiments, "attributes.status = 'RUNNING'", page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dataeff-store", description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri",
                        help="default: $MLFLOW_TRACKING_URI, else $DATAEFF_ROOT/mlflow.db, else ./mlflow.db")
    commands = parser.add_subparsers(dest="command", required=True)
    send = commands.add_parser("replay", help="send the writes that jobs kept while the store was down")
    send.add_argument("folders", nargs="+", help="the jobs' output folders (or their mlflow_outbox/)")
    dead = commands.add_parser("mark-dead", help="mark RUNNING runs whose process is gone as FAILED")
    dead.add_argument("--stale-after", type=float, default=30.0, metavar="MINUTES",
                      help="for runs of other hosts: no heartbeat for this long (default 30)")
    server = commands.add_parser("server", help="MLflow's server on a local PostgreSQL (made on first use)")
    server.add_argument("--folder", type=Path, default=Path("team-store"), help="default: ./team-store")
    server.add_argument("--port", type=int, default=5000, help="the MLflow server's (default 5000)")
    server.add_argument("--db-port", type=int, default=5433,
                        help="PostgreSQL's (default 5433: 5432 is a system cluster's)")
    server.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1 (0.0.0.0: every interface)")
    args = parser.parse_args(argv)
    try:
        if args.command == "replay":
            for folder in args.folders:
                print(replay(folder, args.tracking_uri))
        elif args.command == "server":
            return serve(args.folder, args.port, args.db_port, args.host)
        else:
            uri = args.tracking_uri or default_tracking_uri()
            marked = mark_dead(uri, args.stale_after)
            print("\n".join(marked) if marked else "No RUNNING run has lost its process.")
    except (UserError, OSError, MlflowException) as err:
        print(f"Error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
