"""Shared by the study benchmarks: run a study on SST-2 as one multirun, time it, print its report."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SST2 = Path(os.environ.get("DATAEFF_SST2", ROOT.parent / "shared" / "data" / "sst2"))


def run_study(experiment: str, overrides: list[str], reference: str) -> int:
    """`dataeff-train -m experiment=<experiment>`; exit 0 with SKIP when SST-2 is absent."""
    if not (SST2 / "train.tsv").exists():
        print(f"SKIP: SST-2 not found at {SST2} (set DATAEFF_SST2 to its folder)")
        return 0
    sweep_dir = ROOT / "outputs" / "bench" / f"{experiment}-{datetime.now():%Y-%m-%d_%H-%M-%S}"
    command = [str(Path(sys.executable).with_name("dataeff-train")), "-m", f"experiment={experiment}",
               f"hydra.sweep.dir={sweep_dir}", *overrides]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, "DATAEFF_SST2": str(SST2)})
    minutes = (time.perf_counter() - start) / 60
    report = sweep_dir / "report" / "report.md"
    if not report.exists():
        print(f"The study ended (exit {done.returncode}) without a report; see {sweep_dir}")
        return 1
    print(report.read_text(encoding="utf-8"))
    print(reference)
    print(f"\n{experiment} on SST-2: {minutes:.1f} min wall on {os.cpu_count()} CPUs; files in {sweep_dir}")
    return done.returncode
