"""Study reports: mean ± std tables, learning curves, data-efficiency multipliers and AULC.

`write_report` is what the training app calls after a multirun; `main` is `dataeff-report`.
The math lives in `curves` (pure pandas/numpy), MLflow access in `mlflow_runs`.
"""

from dataeff.report.cli import main, write_report
from dataeff.report.curves import (
    Efficiency,
    aulc,
    aulc_table,
    default_baseline,
    efficiency,
    efficiency_table,
    labels_needed,
    summarize,
)

__all__ = [
    "Efficiency",
    "aulc",
    "aulc_table",
    "default_baseline",
    "efficiency",
    "efficiency_table",
    "labels_needed",
    "main",
    "summarize",
    "write_report",
]
