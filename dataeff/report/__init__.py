"""Study reports: mean ± std tables, learning curves, data-efficiency multipliers and AULC, each
with its uncertainty (t intervals, paired tests against the baseline, bootstrap intervals).

`write_report` is what the training app calls after a multirun; `main` is `dataeff-report`.
The math lives in `curves` (point estimates) and `uncertainty` (intervals and tests), both pure
pandas/numpy/scipy; MLflow access in `mlflow_runs`; the Markdown in `headline` and `render`.
"""

from dataeff.report.cli import main, write_report
from dataeff.report.curves import (
    Efficiency,
    aulc,
    aulc_between,
    aulc_table,
    default_baseline,
    efficiency,
    efficiency_table,
    labels_needed,
    shared_range,
    summarize,
)
from dataeff.report.uncertainty import (
    Analysis,
    analyse,
    paired_difference,
    percentile_interval,
    t_interval,
)

__all__ = [
    "Analysis",
    "Efficiency",
    "analyse",
    "aulc",
    "aulc_between",
    "aulc_table",
    "default_baseline",
    "efficiency",
    "efficiency_table",
    "labels_needed",
    "main",
    "paired_difference",
    "percentile_interval",
    "shared_range",
    "summarize",
    "t_interval",
    "write_report",
]
