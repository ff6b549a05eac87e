"""A disk that fills: one paragraph that says where and what to do, the run FAILED (or none at all
when it was full from the start), and no checkpoint left half written.

The disk is a real one, a small tmpfs mounted for the test (root only; skipped elsewhere), so the
errors are the kernel's ENOSPC as every writer meets it: Lightning's checkpoint, torch.save, SQLite.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from mlflow.entities import Metric

from dataeff.runs.outbox import Outbox
from tests.conftest import FAST, run_app, runs


@pytest.fixture
def small_disk(tmp_path):
    """Mount a tmpfs of the given size under the test's folder; unmounted afterwards."""
    mounted = []

    def mount(megabytes: float) -> Path:
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={int(megabytes * 1024)}k", "tmpfs",
                               str(folder)], capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"cannot mount a small disk here ({done.stderr.strip()[:100]})")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def half_written(folder: Path) -> list[Path]:
    """Checkpoint files that are not whole: a partial one, or one torch cannot read."""
    bad = []
    for path in folder.rglob("*.ckpt*"):
        try:
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001  (any way of not being a checkpoint)
            bad.append(path)
    return bad


def test_outputs_on_a_disk_that_fills_end_the_run_failed_with_no_half_checkpoint(workdir, capsys, small_disk):
    disk = small_disk(1)  # room for Hydra's files and the log, not for a 2 MB checkpoint
    assert run_app(*FAST, f"hydra.run.dir={disk / 'job'}") == 1
    err = capsys.readouterr().err
    assert f"ran out of space while writing {disk / 'job' / 'checkpoints' / 'best-step3.ckpt'}" in err
    assert "Traceback" not in err and "unexpected pos" not in err
    [run] = runs(workdir)
    assert run.info.status == "FAILED" and "ran out of space" in run.data.tags["dataeff.error"]
    assert half_written(disk) == [] and not list(disk.rglob("*.ckpt"))  # before: a truncated best-step3.ckpt


def test_a_store_on_the_disk_that_fills_still_records_the_failure(workdir, capsys, small_disk, monkeypatch):
    disk = small_disk(3)
    shutil.copy(workdir / "mlflow.db", disk / "mlflow.db")
    monkeypatch.setenv("DATAEFF_ROOT", str(disk))
    assert run_app(*FAST) == 1
    err = capsys.readouterr().err
    assert "ran out of space while writing" in err and "Traceback" not in err
    [run] = runs(disk)
    assert run.info.status == "FAILED"  # the half checkpoint it removed made room for the status
    assert half_written(disk) == []


def test_a_disk_full_from_the_start_gets_a_paragraph_and_no_run(workdir, capsys, small_disk):
    disk = small_disk(0.5)
    (disk / "filler").write_bytes(bytes(480 * 1024))
    with pytest.raises(OSError):
        (disk / "more").write_bytes(bytes(64 * 1024))
    assert run_app(*FAST, f"hydra.run.dir={disk / 'job'}") == 1
    err = capsys.readouterr().err
    assert "cannot be written (No space left on device)" in err and "Traceback" not in err
    assert runs(workdir) == []


def test_an_outbox_on_a_full_disk_counts_what_it_could_not_keep(small_disk):
    disk = small_disk(0.1)
    (disk / "filler").write_bytes(bytes(100 * 1024))
    outbox = Outbox(disk / "mlflow_outbox", "http://store:5000")
    outbox.keep("log_batch", "run1", {"metrics": [Metric("train/loss", 1.0, 0, 1)]})
    outbox.keep("set_terminated", "run1", {"status": "FAILED"})
    assert outbox.lost == ["log_batch", "set_terminated"] and outbox.pending() == 0
