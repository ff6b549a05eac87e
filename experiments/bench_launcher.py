"""The same 4-job sweep under Hydra's basic launcher (one job after another) and under the joblib
launcher (n_jobs at once, 1/n of the cores each), in one run, in a scratch folder:

    python experiments/bench_launcher.py                      # 4 jobs x 200 steps, n_jobs=2
    python experiments/bench_launcher.py --steps 400 --n-jobs 2

Prints each wall time and the ratio basic / joblib (above 1: the parallel launcher is faster).
Run it on a quiet machine: nothing else may share the cores while it times.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def sweep(folder: Path, launcher: list[str], steps: int) -> float:
    command = [str(Path(sys.executable).with_name("dataeff-train")), "-m", *launcher, "seed=1,2,3,4",
               f"trainer.max_steps={steps}", "trainer.val_check_interval=100",
               "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
    start = time.perf_counter()
    subprocess.run(command, cwd=folder, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        basic, parallel = Path(tmp, "basic"), Path(tmp, "joblib")
        basic.mkdir(), parallel.mkdir()
        sweep(basic, [], 5)  # warm the tokenizer and data caches of this folder's first run
        basic_s = sweep(basic, [], args.steps)
        joblib_s = sweep(parallel, ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.n_jobs}"],
                         args.steps)
    print(f"4 jobs x {args.steps} steps on {os.cpu_count()} CPUs")
    print(f"basic launcher : {basic_s:6.1f} s")
    print(f"joblib n_jobs={args.n_jobs}: {joblib_s:6.1f} s")
    print(f"ratio basic/joblib: {basic_s / joblib_s:.2f}x")


if __name__ == "__main__":
    main()
