"""Study reports: mean ± std tables, learning curves, data-efficiency multipliers and AULC, each
with its uncertainty (t intervals, paired tests against the baseline, bootstrap intervals).

`cli.write_report` is what a sweep calls at its end; `cli.main` is `dataeff-report`. The package
imports nothing itself, so a job that logs a per-class table loads no plotting or statistics.
The math lives in `curves` (point estimates) and `uncertainty` (intervals and tests), both pure
pandas/numpy/scipy; MLflow access in `mlflow_runs`; the Markdown in `headline` and `render`.
"""
