"""A machine that runs out, said as such. A full disk: checkpoints written whole or not at all, and
one paragraph instead of the tracebacks of every writer that meets it (Lightning's checkpoint,
torch.save, SQLite, logs). Memory: one paragraph naming the settings that size a step.

`AtomicCheckpointIO` is Lightning's checkpoint plugin for local paths: it writes next to the
target and renames, so a checkpoint is complete or absent (Lightning's own save stages the file in
/tmp and moves it, which leaves a truncated `best-step*.ckpt` behind when the target disk fills);
the token cache is written the same way (`save_whole`).
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
FULL_TEXTS = ("database or disk is full", "No space left on device", "Disk quota exceeded")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoints through `save_whole`: a reader (a resume, the export of the best
    weights) never meets half a file, and a failed write leaves none."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if "://" in str(path):  # object storage: Lightning's own transaction
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        save_whole(checkpoint, Path(path))


def save_whole(obj, target: Path) -> None:
    """torch.save into `<name>.partial` beside `target`, then a rename: the file is complete or
    absent. A full disk is an OSError naming `target` (torch's own words: "unexpected pos ...")."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        with partial.open("wb") as file:  # a Python file: the OSError of a full disk reaches us
            torch.save(obj, file)
        os.replace(partial, target)
    except BaseException as err:
        partial.unlink(missing_ok=True)
        if is_disk_full(err):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target)) from err
        raise


def is_disk_full(err: BaseException) -> bool:
    """ENOSPC (or a quota, or a file size limit) from any writer, however it words it."""
    for cause in chain(err):
        if isinstance(cause, OSError) and cause.errno in FULL:
            return True
        if isinstance(cause, (RuntimeError, sqlite3.OperationalError)) and any(
                text in str(cause) for text in FULL_TEXTS):
            return True
    return any(text in str(err) for text in FULL_TEXTS)  # MLflow's and SQLAlchemy's wrappers


def chain(err: BaseException):
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def full_disk_message(err: BaseException, output_dir: str | Path) -> str:
    """One paragraph: where the disk filled, what survived, and how to go on."""
    filename = next((c.filename for c in chain(err) if isinstance(c, OSError) and c.filename), None)
    where = Path(filename or output_dir)
    folder = where if where.is_dir() else where.parent
    free = free_megabytes(folder)
    last = Path(output_dir) / "checkpoints" / "last.ckpt"
    resume = (f"continue it from its last checkpoint with hydra.run.dir={output_dir} (the same command "
              "in its own folder goes on from last.ckpt)" if last.is_file() else "run the same command again")
    return (f"The disk under {folder} ran out of space while writing {filename or 'the job’s files'} "
            f"({free} MB free now); the job stopped there, and no checkpoint was left half written. "
            f"Free some space, or point DATAEFF_ROOT (outputs, store), hydra.run.dir or "
            f"paths.cache_dir at a disk with room, then {resume}.")


def free_megabytes(folder: Path) -> str:
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return f"{shutil.disk_usage(candidate).free / 1e6:.1f}"
    return "?"


def is_out_of_memory(err: BaseException) -> bool:
    """CUDA's OutOfMemoryError, Python's MemoryError, or torch's CPU allocator giving up."""
    return any(isinstance(cause, (torch.OutOfMemoryError, MemoryError))
               or (isinstance(cause, RuntimeError) and "can't allocate memory" in str(cause))
               for cause in chain(err))


def out_of_memory_message(err: BaseException, cfg) -> str:
    data = cfg.data
    gpu = cfg.trainer.get("accelerator") in ("gpu", "cuda") or any(
        isinstance(cause, torch.OutOfMemoryError) for cause in chain(err))
    said = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
    return (f"The job ran out of {'GPU' if gpu else 'CPU'} memory ({said}). "
            f"A step's memory grows with data.batch_size={data.get('batch_size')} and data.max_length="
            f"{data.get('max_length')}: halve the batch (and set +trainer.accumulate_grad_batches=2 to keep "
            "the batch the optimizer sees), shorten the texts, use trainer.precision=bf16-mixed, or a "
            "smaller model preset.")


def fault_message(err: BaseException, cfg) -> str | None:
    """The paragraph for a machine that ran out (disk, memory) under the job `cfg`; None otherwise."""
    if is_disk_full(err):
        return full_disk_message(err, cfg.paths.output_dir)
    if is_out_of_memory(err):
        return out_of_memory_message(err, cfg)
    return None
