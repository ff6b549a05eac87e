"""Benchmark: the augmentation_curve study on SST-2, timed, with its report table printed.

    python experiments/augmentation_curve/bench.py                          # the whole study (long)
    python experiments/augmentation_curve/bench.py data.data_seed=0 init=scratch data.fraction=0.072,1.0

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
REFERENCE = ("Literature: EDA +3.0 points at 500 sentences and +0.8 with full data from scratch "
             "(Wei & Zou 2019); about no gain for pretrained encoders (Longpre et al. 2020)")


def main(overrides: list[str]) -> int:
    if not (SST2 / "train.tsv").exists():
        print(f"SKIP: SST-2 not found at {SST2} (set DATAEFF_SST2 to its folder)")
        return 0
    sweep_dir = ROOT / "outputs" / "bench" / f"augmentation_curve-{datetime.now():%Y-%m-%d_%H-%M-%S}"
    command = [str(Path(sys.executable).with_name("dataeff-train")), "-m", "experiment=augmentation_curve",
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
    print(f"\naugmentation_curve on SST-2: {minutes:.1f} min wall on {os.cpu_count()} CPUs; "
          f"files in {sweep_dir}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
