"""A job's config as its stages left it, written once by rank 0 and read by every other rank.

Rank 0 turns the config a user asked for into the config that runs (a study's pretraining run
found, its weights fetched, a learning rate tuned, the audit's cleaned file, an earlier attempt's
checkpoint) and writes it to `<output dir>/resolved.yaml`, values resolved. The other ranks of a
DDP job start from that file instead of running the stages again, so every rank trains on what
rank 0 logs. `resolved.launch` says which launch wrote it (a requeued or resumed job in the same
folder must not read its earlier attempt's file): the SLURM or submitit job, or rank 0's process,
which Lightning's launcher makes the other ranks' parent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dataeff.errors import UserError

log = logging.getLogger(__name__)
RESOLVED, LAUNCH = "resolved.yaml", "resolved.launch"
ENV = "DATAEFF_RESOLVED_DIR"  # rank 0's output folder, for the ranks it starts
WAIT_S = 6 * 3600  # a rank started beside rank 0 (submitit, SLURM) waits while rank 0 pretrains
JOB_IDS = ("SLURM_JOB_ID", "SUBMITIT_LOCAL_JOB_ID", "TORCHELASTIC_RUN_ID")


def launch_token(rank_zero: bool) -> str:
    """The same for every rank of one launch of a job, different for the next."""
    for name in JOB_IDS:
        if os.environ.get(name):
            return f"{name}={os.environ[name]}.{os.environ.get('SLURM_RESTART_COUNT', '0')}"
    return f"pid={os.getpid() if rank_zero else os.getppid()}"  # Lightning starts the ranks from rank 0


def values(node):
    """A plain copy of `node` with every value resolved that can be; one that cannot (an
    interpolation into something this job lacks) stays as written."""
    if isinstance(node, DictConfig):
        return {key: resolved_value(node, key) for key in node}
    if isinstance(node, ListConfig):
        return [resolved_value(node, index) for index in range(len(node))]
    return node


def resolved_value(node, key):
    try:
        return values(node[key])
    except OmegaConfBaseException:
        return node._get_node(key)._value()


def digest(cfg: DictConfig) -> str:
    return hashlib.sha1(json.dumps(values(cfg), sort_keys=True, default=str).encode()).hexdigest()[:12]


def write_resolved(cfg: DictConfig) -> Path:
    """Rank 0: the config that runs, for the other ranks and for the record. The ranks Lightning
    starts inherit its path (ENV): in a sweep, Lightning gives them a Hydra folder of their own."""
    folder = Path(cfg.paths.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / RESOLVED, OmegaConf.to_yaml(OmegaConf.create(values(cfg))))
    write_atomically(folder / LAUNCH, launch_token(rank_zero=True))
    os.environ[ENV] = str(folder.resolve())
    log.info("Rank 0 resolved the job's config: %s (config %s)", folder / RESOLVED, digest(cfg))
    return folder / RESOLVED


def read_resolved(output_dir: str | Path, rank: int, wait_s: float = WAIT_S) -> DictConfig:
    """Another rank: rank 0's config, once rank 0 has written it for this launch (in the folder
    rank 0 handed down, else in this job's own: tasks that SLURM or submitit start side by side)."""
    token = launch_token(rank_zero=False)
    folders = [Path(folder) for folder in dict.fromkeys([os.environ.get(ENV), str(output_dir)]) if folder]
    deadline = time.monotonic() + wait_s
    while (folder := next((f for f in folders if written_by(f, token)), None)) is None:
        if time.monotonic() > deadline:
            raise UserError(f"Rank {rank} waited {wait_s / 3600:.0f} h for rank 0's {folders[-1] / RESOLVED} "
                            f"(launch {token}); rank 0 did not get that far. See rank 0's log in {folder}.")
        time.sleep(1)
    cfg = OmegaConf.load(folder / RESOLVED)
    log.info("Rank %d trains on rank 0's %s (config %s)", rank, folder / RESOLVED, digest(cfg))
    return cfg


def written_by(folder: Path, token: str) -> bool:
    return (folder / LAUNCH).is_file() and (folder / LAUNCH).read_text() == token


def forget_handed_down() -> None:
    """Once a job ends, nothing started from this process (the next job of a sweep, a test's next
    command) inherits its folder."""
    os.environ.pop(ENV, None)


def write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
