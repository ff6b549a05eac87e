"""What a FINISHED job leaves on disk: its weights once.

A job's result is `hf_model/` (weights and tokenizer, no optimizer state), logged to MLflow. The
training-state checkpoints (.ckpt: weights plus AdamW's two moments, about 3x the weights) exist
to resume a job that did not finish; once it has, they go unless `keep_checkpoints` keeps them.
With a local artifact store, `<output dir>/hf_model` becomes a link to the logged copy.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

log = logging.getLogger(__name__)
KEEP = ("none", "last", "all")


def prune_checkpoints(folder: Path, keep: str) -> None:
    """Delete the .ckpt files a finished job no longer needs: all but `last.ckpt` for keep=last."""
    if keep == "all" or not folder.is_dir():
        return
    for path in folder.glob("*.ckpt"):
        if not (keep == "last" and path.name == "last.ckpt"):
            path.unlink()
    if not any(folder.iterdir()):
        folder.rmdir()


def local_path(uri: str) -> Path | None:
    """The folder an artifact URI names on this machine, or None (a server, a bucket)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path))
    return None


def link_to_logged(export_dir: Path, artifact_uri: str, name: str = "hf_model") -> bool:
    """Replace `export_dir` by a link to its logged copy when the store keeps artifacts here."""
    artifacts = local_path(artifact_uri)
    logged = artifacts / name if artifacts is not None else None
    if logged is None or not logged.is_dir() or export_dir.is_symlink() or not export_dir.is_dir():
        return False
    if sorted(p.name for p in logged.iterdir()) != sorted(p.name for p in export_dir.iterdir()):
        return False  # not the same files: keep ours
    shutil.rmtree(export_dir)
    export_dir.symlink_to(logged.resolve(), target_is_directory=True)
    return True


def size_on_disk(*folders: Path) -> int:
    """Bytes of the files under `folders`, each file once (links are not followed)."""
    seen, total = set(), 0
    for folder in folders:
        if folder is None or not folder.is_dir():
            continue
        for root, _, files in os.walk(folder):
            for name in files:
                stat = Path(root, name).lstat()
                if (stat.st_dev, stat.st_ino) not in seen:
                    seen.add((stat.st_dev, stat.st_ino))
                    total += stat.st_size
    return total


def settle_outputs(output_dir: str | Path, keep: str, artifact_uri: str, linkable: bool) -> float:
    """Prune and link as the module docstring says; the run's footprint in MB."""
    output_dir = Path(output_dir)
    prune_checkpoints(output_dir / "checkpoints", keep)
    if linkable:  # nothing of the export is still waiting in an outbox
        link_to_logged(output_dir / "hf_model", artifact_uri)
    megabytes = size_on_disk(output_dir, local_path(artifact_uri)) / 1e6
    log.info("This run keeps %.0f MB on disk (outputs in %s, artifacts in %s); keep_checkpoints=%s",
             megabytes, output_dir, artifact_uri, keep)
    return megabytes
