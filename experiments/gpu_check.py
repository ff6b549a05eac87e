"""The GPU check: every GPU path of dataeff, run for real on a machine with CUDA, in a few minutes.

    python experiments/gpu_check.py            # or: make gpu-check
    python experiments/gpu_check.py --steps 100
    python experiments/gpu_check.py --only fsdp sweep   # the cases whose name has one of these words

One line per case: its MLflow status, optimizer steps per second over the job (start-up
included, so short runs understate the GPU) and, for the sweep, its wall time. Exits 1 when a
case did not finish, 0 otherwise; without CUDA it says so and exits 0.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

MODEL = ["model=bert_mini", "data.batch_size=64", "trainer.val_check_interval=50",
         "trainer.limit_val_batches=10", "trainer.enable_progress_bar=false"]
CASES = {
    "gpu bf16-mixed": ["trainer=gpu", "trainer.precision=bf16-mixed"],
    "gpu 16-mixed": ["trainer=gpu", "trainer.precision=16-mixed"],
    "gpu bf16-mixed, task.compile": ["trainer=gpu", "trainer.precision=bf16-mixed", "task.compile=true"],
    "ddp, 1 device": ["trainer=ddp", "trainer.devices=1"],
    "fsdp, 1 device, export": ["trainer=fsdp", "trainer.devices=1"],
    "classify on gpu (test set)": ["trainer=gpu", "task=classify", "data=easyvqa_answers"],
}
SWEEP = ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=4", "trainer=gpu", "seed=1,2,3,4"]


def dataeff_train(folder: Path, args: list[str], steps: int) -> float:
    command = [str(Path(sys.executable).with_name("dataeff-train")), *args, *MODEL,
               f"trainer.max_steps={steps}"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
    return time.perf_counter() - start


def finished_runs(folder: Path) -> list:
    client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    return [r for r in runs if "dataeff.sweep_key" not in r.data.tags]  # jobs, not sweep parents


def check(name: str, folder: Path, args: list[str], steps: int) -> bool:
    folder.mkdir()
    wall = dataeff_train(folder, args, steps)
    jobs = finished_runs(folder) if (folder / "mlflow.db").exists() else []
    statuses = sorted({r.info.status for r in jobs}) or ["no run"]
    rates = [steps / ((r.info.end_time - r.info.start_time) / 1000) for r in jobs if r.info.end_time]
    exported = all(r.data.tags.get("dataeff.output_dir") and
                   (Path(r.data.tags["dataeff.output_dir"]) / "hf_model" / "model.safetensors").exists()
                   for r in jobs)
    rate = f"{sum(rates) / len(rates):6.1f} steps/s" if rates else "      - steps/s"
    print(f"{name:28s} {len(jobs)} run(s) {'/'.join(statuses):9s} {rate}  wall {wall:5.0f} s  "
          f"export {'ok' if exported and jobs else 'MISSING'}", flush=True)
    return statuses == ["FINISHED"] and exported


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--only", nargs="+", default=None, metavar="WORD")
    args = parser.parse_args()
    chosen = lambda name: args.only is None or any(word in name for word in args.only)  # noqa: E731
    import torch

    if not torch.cuda.is_available():
        print("No CUDA device here: nothing to check (run this on a machine with a GPU).")
        return 0
    print(f"{torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} GPU(s), torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, {args.steps} steps a case", flush=True)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, overrides) in enumerate(CASES.items()):
            if chosen(name):
                ok &= check(name, Path(tmp, f"case{i}"), overrides, args.steps)
        if chosen("joblib sweep"):
            ok &= check("joblib sweep, 4 jobs on gpu", Path(tmp, "sweep"), SWEEP, args.steps)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
