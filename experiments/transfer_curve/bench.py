"""Benchmark: the transfer_curve study on SST-2, timed, with its report table printed.

    python experiments/transfer_curve/bench.py                      # the whole study (~1-2 h on 2 cores)
    python experiments/transfer_curve/bench.py data.data_seed=0     # any dataeff-train override narrows it

Needs ../shared/data/sst2 (or $DATAEFF_SST2); without it, says so and exits 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SST2 = Path(os.environ.get("DATAEFF_SST2", ROOT.parent / "shared" / "data" / "sst2"))
# TF-IDF (1-2 grams) + logistic regression on the same test set, from ../shared/data/README.md
REFERENCE = ("Reference, TF-IDF + logistic regression on the same test set: "
             "57.9 ± 2.5 / 69.5 ± 0.7 / 81.3% at 1 / 10 / 100% of the labels")


def main(overrides: list[str]) -> int:
    if not (SST2 / "train.tsv").exists():
        print(f"SKIP: SST-2 not found at {SST2} (set DATAEFF_SST2 to its folder)")
        return 0
    sweep_dir = ROOT / "outputs" / "bench" / f"transfer_curve-{datetime.now():%Y-%m-%d_%H-%M-%S}"
    command = [str(Path(sys.executable).with_name("dataeff-train")), "-m", "experiment=transfer_curve",
               f"hydra.sweep.dir={sweep_dir}", *overrides]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, "DATAEFF_SST2": str(SST2)})
    minutes = (time.perf_counter() - start) / 60
    report = sweep_dir / "report" / "report.md"
    if not report.exists():
        print(f"The study ended (exit {done.returncode}) without a report; see {sweep_dir}")
        return 1
    print(report.read_text(encoding="utf-8"))
    print(REFERENCE)
    print(f"\ntransfer_curve on SST-2: {minutes:.1f} min wall on {os.cpu_count()} CPUs; files in {sweep_dir}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
