"""Start-up: what a job costs besides its steps, for dataeff and for the Hugging Face Trainer.

    make bench-startup
    python experiments/bench/startup.py --rounds 5 --jobs 4

Each contestant is a process of its own that trains `mlm.py`'s model (bert_mini, fp32) for one
step on the same text with the same tokenizer, interleaved over rounds after one untimed round
(which fills what a study's first job fills once: dataeff's token cache and each store's tables).
The wall time is the fixed cost; the one step (well under a second) is in every row alike.

- `help`: `dataeff-train --help`;
- `hf_trainer`: the HF Trainer with nothing logged (`report_to="none"`);
- `hf_trainer_mlflow`: the same logging to MLflow in a SQLite store (`report_to="mlflow"`), as
  every dataeff run does;
- `dataeff`: one `dataeff-train` job;
- `dataeff_sweep`: `dataeff-train -m seed=0,..,N-1`, N jobs in one process as Hydra's basic
  launcher runs a sweep: imports are paid once, and each later job costs only its own work.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from mlm import HERE, command, prepare, run_process

CONTESTANTS = ("help", "hf_trainer", "hf_trainer_mlflow", "dataeff", "dataeff_sweep")


def argv(name: str, spec: dict, work: Path, jobs: int) -> list[str]:
    train = command("dataeff_packed", spec, work)
    return {"help": [train[0], "--help"],
            "hf_trainer": [sys.executable, str(HERE / "contenders.py"), "hf_trainer", spec["file"]],
            "hf_trainer_mlflow": [sys.executable, str(HERE / "contenders.py"), "hf_trainer_mlflow",
                                  spec["file"]],
            "dataeff": train,
            # rerun: the same sweep again trains its jobs again instead of skipping them as FINISHED
            "dataeff_sweep": [train[0], "-m", *train[1:], "rerun=true",
                              "seed=" + ",".join(map(str, range(jobs)))],
            }[name]


def run_round(spec: dict, work: Path, args, order: tuple[str, ...]) -> dict[str, float]:
    hf_store = {"MLFLOW_TRACKING_URI": f"sqlite:///{work / 'hf_mlflow.db'}",
                "MLFLOW_EXPERIMENT_NAME": "hf-trainer"}
    return {name: run_process(name, argv(name, spec, work, args.jobs), work, args.threads,
                              **(hf_store if name == "hf_trainer_mlflow" else {}))[0]
            for name in order}


def report(walls: dict[str, list[float]], jobs: int, study: int) -> None:
    median = {name: statistics.median(times) for name, times in walls.items()}
    print("\n| contestant | wall s (median) | min-max |\n|---|---|---|")
    for name, times in walls.items():
        print(f"| {name} | {median[name]:.2f} | {min(times):.2f}-{max(times):.2f} |")
    one, hf, hf_mlflow = median["dataeff"], median["hf_trainer"], median["hf_trainer_mlflow"]
    later = (median["dataeff_sweep"] - one) / (jobs - 1)
    per_job = (one + (study - 1) * later) / study
    print(f"\n`dataeff-train --help`: {median['help']:.2f} s (target < 2).")
    print(f"One job: dataeff {one:.1f} s = {one / hf:.2f}x the HF Trainer's {hf:.1f} s (target <= 1), "
          f"{one / hf_mlflow:.2f}x the HF Trainer's with MLflow logging ({hf_mlflow:.1f} s).")
    print(f"A sweep of {jobs} jobs in one process: {median['dataeff_sweep']:.1f} s; each job after the "
          f"first adds {later:.1f} s. A study of {study} jobs: {per_job:.1f} s a job, "
          f"{per_job / hf:.2f}x the HF Trainer's (a process a job) and {per_job / hf_mlflow:.2f}x with "
          "MLflow.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=4, help="jobs in the timed sweep")
    parser.add_argument("--study", type=int, default=45, help="jobs in the study the last line prices")
    parser.add_argument("--model", default="bert_mini")
    parser.add_argument("--texts", type=int, default=2000,
                        help="few, so that the HF contestants' tokenizing (every run) stays small")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dataeff-startup-") as tmp:
        work = Path(tmp)
        options = argparse.Namespace(texts=args.texts, vocab_size=2000, model=args.model, batch_size=32,
                                     max_length=128, steps=1, threads=args.threads, device="cpu")
        spec = {**prepare(work, options), "precision": "32-true", "out": str(work / "record.json"),
                "work_dir": str(work / "hf"), "file": str(work / "spec.json")}
        Path(spec["file"]).write_text(json.dumps(spec))
        run_round(spec, work, args, CONTESTANTS)  # untimed: caches, stores, the disk's page cache
        walls: dict[str, list[float]] = {name: [] for name in CONTESTANTS}
        for round_ in range(args.rounds):
            turn = round_ % len(CONTESTANTS)
            for name, wall in run_round(spec, work, args, CONTESTANTS[turn:] + CONTESTANTS[:turn]).items():
                walls[name].append(wall)
                print(f"round {round_ + 1} {name:18s} {wall:6.2f} s", flush=True)
        report(walls, args.jobs, args.study)
    return 0


if __name__ == "__main__":
    sys.exit(main())
