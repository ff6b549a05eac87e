"""Benchmark: text-only, image-only and each fusion head on the full easy-VQA data, with wall time.

    python experiments/fusion_vs_unimodal/bench.py                        # CPU, the study's 6000 steps
    python experiments/fusion_vs_unimodal/bench.py trainer=gpu             # on a GPU (bf16-mixed)
    python experiments/fusion_vs_unimodal/bench.py trainer.max_steps=1000  # any override narrows it

One seed, 100% of the labels; prints test accuracy per arm next to the reference points, and
per answer type (yes/no, shape, colour) from each run's test_per_class.csv.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[2]
SHAPES = {"circle", "rectangle", "triangle"}
REFERENCES = [("always the most common answer", 37.3), ("best answer from the question alone", 67.0)]


def main(overrides: list[str]) -> int:
    sweep_dir = ROOT / "outputs" / "bench" / f"fusion-{datetime.now():%Y-%m-%d_%H-%M-%S}"
    uri = os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{ROOT}/mlflow.db")
    command = [str(Path(sys.executable).with_name("dataeff-train")), "-m", "experiment=fusion_vs_unimodal",
               "data.fraction=1.0", "data.data_seed=0", f"hydra.sweep.dir={sweep_dir}",
               "hydra.callbacks.mlflow_sweep.report=null", *overrides]
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, "MLFLOW_TRACKING_URI": uri})
    client = MlflowClient(uri)
    parent = (sweep_dir / "mlflow_parent_run_id").read_text().strip()
    experiment = client.get_run(parent).info.experiment_id
    children = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent}'",
                                  order_by=["attributes.start_time"])
    print("\n| arm | test accuracy (%) | yes/no | shape | colour | macro-F1 | wall time (min) | status |"
          "\n|---|---|---|---|---|---|---|---|")
    for run in children:
        metrics, info, nan = run.data.metrics, run.info, float("nan")
        minutes = ((info.end_time or info.start_time) - info.start_time) / 60_000
        accuracy, f1 = 100 * metrics.get("test/accuracy", nan), metrics.get("test/f1_macro", nan)
        by_type = " | ".join(f"{value:.1f}" for value in answer_types(client, run.info.run_id))
        arm = run.data.tags.get("fusion.name")
        print(f"| {arm} | {accuracy:.1f} | {by_type} | {f1:.3f} | {minutes:.1f} | {info.status} |")
    for name, value in REFERENCES:
        print(f"| reference: {name} | {value} | | | | | | |")
    return done.returncode


def answer_types(client: MlflowClient, run_id: str) -> list[float]:
    """Test accuracy (%) on yes/no, shape and colour answers, from the run's per-label results."""
    try:
        table = pd.read_csv(client.download_artifacts(run_id, "test_per_class.csv"))
    except (MlflowException, OSError):  # a failed run has none
        return [float("nan")] * 3
    kind = table.label.map(lambda label: "yes/no" if label in ("yes", "no") else
                           "shape" if label in SHAPES else "colour")
    right = (table.recall * table.support).groupby(kind).sum()
    return [100 * right[k] / table.support.groupby(kind).sum()[k] for k in ("yes/no", "shape", "colour")]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
