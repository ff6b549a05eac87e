"""Learning-curve math on plain DataFrames and arrays: no MLflow, so it is easy to test.

A learning curve is a condition's mean score as a function of its label budget x. Curves are
compared in log10(x), because budgets in a sweep grow geometrically (10, 100, 1000, ...).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

CONDITION_SEPARATOR = "/"
# Condition values that conventionally mean "no technique", in order of preference.
BASELINE_NAMES = ("scratch", "none", "text")

INTERPOLATED = "interpolated"
AT_MOST = "at_most"  # the baseline already matches at its smallest budget: the need may be lower
ABOVE_MAX = "above_max"  # the baseline never matches within its largest budget


def condition_labels(df: pd.DataFrame, keys: Sequence[str]) -> pd.Series:
    """Label each row by the values of the columns `keys`, joined with "/" (e.g. "bert/none")."""
    values = df[list(keys)].astype(str).itertuples(index=False)
    return pd.Series(
        [CONDITION_SEPARATOR.join(row) for row in values], index=df.index, dtype=object
    )


def summarize(
    df: pd.DataFrame,
    metric: str,
    condition: str | Sequence[str] = "condition",
    budget: str = "budget",
) -> pd.DataFrame:
    """Mean, sample std and run count of `metric` per condition x budget.

    `condition` is a column, or several columns whose values are joined with "/". Rows without
    a value for `metric` are left out. The std uses ddof=1 and is 0 for a single run, so error
    bands stay drawable. Returns columns condition, budget, n, mean, std, sorted.
    """
    keys = [condition] if isinstance(condition, str) else list(condition)
    data = pd.DataFrame(
        {
            "condition": condition_labels(df, keys),
            "budget": pd.to_numeric(df[budget]),
            "value": pd.to_numeric(df[metric]),
        }
    ).dropna(subset=["value"])
    cells = data.groupby(["condition", "budget"])["value"]
    summary = cells.agg(n="count", mean="mean", std="std").reset_index()
    summary["std"] = summary["std"].fillna(0.0)
    return summary.sort_values(["condition", "budget"], ignore_index=True)


def _sorted_curve(xs: Iterable[float], ys: Iterable[float]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1 or len(xs) == 0:
        raise ValueError(f"need two equal-length, non-empty 1-D arrays, got {xs.shape}, {ys.shape}")
    if np.any(xs <= 0):
        raise ValueError(f"budgets must be positive for a log scale, got {xs.tolist()}")
    order = np.argsort(xs, kind="stable")
    return xs[order], ys[order]


def labels_needed(xs: Iterable[float], ys: Iterable[float], score: float) -> float:
    """Smallest x at which the curve (xs, ys) reaches `score`, interpolating linearly in log10(x).

    Returns the smallest x when the curve already reaches `score` there (the true need may be
    lower; nothing below it was measured) and inf when it never does within its largest x.
    """
    xs, ys = _sorted_curve(xs, ys)
    if ys[0] >= score:
        return float(xs[0])
    log_xs = np.log10(xs)
    for i in range(1, len(xs)):
        if ys[i] >= score:  # first crossing: ys[i - 1] < score <= ys[i]
            fraction = (score - ys[i - 1]) / (ys[i] - ys[i - 1])
            return float(10 ** (log_xs[i - 1] + fraction * (log_xs[i] - log_xs[i - 1])))
    return math.inf


def aulc(xs: Iterable[float], ys: Iterable[float]) -> float:
    """Area under the learning curve: trapezoids over log10(x), divided by the log10(x) range.

    The normalisation keeps it in metric units: a flat curve at 0.8 has AULC 0.8.
    """
    xs, ys = _sorted_curve(xs, ys)
    log_xs = np.log10(xs)
    width = log_xs[-1] - log_xs[0]
    if width == 0:
        return float(ys.mean())
    return float(np.trapezoid(ys, log_xs) / width)


def aulc_between(xs: Iterable[float], ys: Iterable[float], low: float, high: float) -> float:
    """AULC over [low, high] only, reading the curve at the ends by linear interpolation in log10(x).

    Conditions run over different budgets are compared over the range they share; [low, high] must
    lie within the curve's budgets (no extrapolation).
    """
    xs, ys = _sorted_curve(xs, ys)
    if not xs[0] <= low <= high <= xs[-1]:
        raise ValueError(f"range {low}-{high} is not within the curve's budgets {xs[0]:g}-{xs[-1]:g}")
    log_xs, ends = np.log10(xs), np.log10([low, high])
    inside = log_xs[(log_xs > ends[0]) & (log_xs < ends[1])]
    grid = np.concatenate([ends[:1], inside, ends[1:]])
    values = np.interp(grid, log_xs, ys)
    if ends[1] == ends[0]:
        return float(values[0])
    return float(np.trapezoid(values, grid) / (ends[1] - ends[0]))


def shared_range(summary: pd.DataFrame) -> tuple[float, float] | None:
    """The budget range every condition of `summary` covers (the intersection of their ranges), or
    None when they do not all overlap."""
    ranges = summary.groupby("condition")["budget"].agg(["min", "max"])
    low, high = float(ranges["min"].max()), float(ranges["max"].min())
    return (low, high) if low <= high else None


def format_ratio(ratio: float) -> str:
    """Two significant digits, without exponent notation: 0.05, 1, 5.6, 12, 340."""
    return f"{ratio:.0f}" if ratio >= 10 else f"{ratio:.2g}"


@dataclass(frozen=True)
class Efficiency:
    """How many times more labels the baseline needs to match a technique's score at a budget."""

    budget: float  # the technique's labels
    score: float  # the technique's mean score there
    baseline_labels: float  # inf for ABOVE_MAX; the baseline's smallest budget for AT_MOST
    kind: str  # INTERPOLATED, AT_MOST or ABOVE_MAX

    @property
    def multiplier(self) -> float:
        return self.baseline_labels / self.budget

    def __str__(self) -> str:
        if self.kind == ABOVE_MAX:
            return "> max"
        prefix = "<= " if self.kind == AT_MOST else ""
        return f"{prefix}{format_ratio(self.multiplier)}x"


def efficiency(
    baseline_xs: Iterable[float], baseline_ys: Iterable[float], budget: float, score: float
) -> Efficiency:
    """Data-efficiency of a technique scoring `score` with `budget` labels, against a baseline."""
    xs, ys = _sorted_curve(baseline_xs, baseline_ys)
    needed = labels_needed(xs, ys, score)
    if math.isinf(needed):
        kind = ABOVE_MAX
    elif ys[0] >= score:
        kind = AT_MOST
    else:
        kind = INTERPOLATED
    return Efficiency(budget=float(budget), score=float(score), baseline_labels=needed, kind=kind)


def efficiency_table(summary: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """One row per non-baseline condition x budget of `summary` (as made by `summarize`).

    Columns: condition, budget, mean, baseline_labels, multiplier, kind, text.
    """
    base = summary[summary["condition"] == baseline]
    rows = []
    for row in summary[summary["condition"] != baseline].itertuples(index=False):
        result = efficiency(base["budget"], base["mean"], row.budget, row.mean)
        rows.append(
            {
                "condition": row.condition,
                "budget": row.budget,
                "mean": row.mean,
                "baseline_labels": result.baseline_labels,
                "multiplier": result.multiplier,
                "kind": result.kind,
                "text": str(result),
            }
        )
    columns = ["condition", "budget", "mean", "baseline_labels", "multiplier", "kind", "text"]
    return pd.DataFrame(rows, columns=columns)


def aulc_table(summary: pd.DataFrame) -> pd.DataFrame:
    """AULC of each condition's mean curve, with the budget range it covers; NaN for a condition
    run at one budget (a single point has no area)."""
    rows = [
        {
            "condition": condition,
            "aulc": aulc(curve["budget"], curve["mean"]) if len(curve) > 1 else math.nan,
            "min_budget": curve["budget"].min(),
            "max_budget": curve["budget"].max(),
            "budgets": len(curve),
        }
        for condition, curve in summary.groupby("condition", sort=True)
    ]
    return pd.DataFrame(rows, columns=["condition", "aulc", "min_budget", "max_budget", "budgets"])


def default_baseline(conditions: Iterable[str]) -> str:
    """The first of BASELINE_NAMES present, else a multi-key label made only of them
    (e.g. "scratch/none"), else the first condition alphabetically."""
    conditions = sorted(set(conditions))
    if not conditions:
        raise ValueError("no conditions")
    for name in BASELINE_NAMES:
        if name in conditions:
            return name
    for label in conditions:
        if all(part in BASELINE_NAMES for part in label.split(CONDITION_SEPARATOR)):
            return label
    return conditions[0]
