"""How sure the report's numbers are: t intervals, paired tests and bootstrap intervals.

A run is the unit of replication: a cell (condition x budget) holds one score per run. Means and
paired differences are averages of runs, so they get Student's t intervals. The data-efficiency
multiplier and AULC are functions of whole mean curves, with no formula for their spread, so they
get percentile bootstrap intervals: runs are resampled within each cell independently, the way the
study drew them, and the statistic is recomputed on each resample.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from dataeff.report.curves import (
    aulc_between,
    aulc_table,
    efficiency_table,
    labels_needed,
    shared_range,
    summarize,
)
from dataeff.report.references import Reference, one_class_cells, reference_levels
from dataeff.report.seeds import crossed, spread_by_source

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0  # a fixed seed: the same runs give the same report
ALPHA = 0.05  # a paired difference below this p-value is marked significant
MIN_RUNS = 2  # an interval needs at least this many runs in every cell it compares
PAIR = "pair"  # the study table's column of pairing keys
PAIRED_COLUMNS = ["condition", "budget", "pairs", "diff", "ci_low", "ci_high", "p"]

Cell = tuple[str, float]


def mean_interval(mean, std, n, confidence: float = CONFIDENCE):
    """Student's t interval of a mean of n runs with sample std `std`; NaN where n < 2.

    Works elementwise on arrays and Series, so it fills a whole summary table at once.
    """
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = stats.t.ppf(0.5 + confidence / 2, n - 1) * np.asarray(std, dtype=float) / np.sqrt(n)
    return mean - half, mean + half


def t_interval(values: Iterable[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student's t interval of the mean of `values` (NaN ignored); (nan, nan) below two values."""
    values = np.asarray(list(values), dtype=float)
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return math.nan, math.nan
    low, high = mean_interval(values.mean(), values.std(ddof=1), len(values), confidence)
    return float(low), float(high)


def with_intervals(summary: pd.DataFrame) -> pd.DataFrame:
    """`summary` (from `summarize`) plus ci_low, ci_high: each cell's t interval of the mean."""
    low, high = mean_interval(summary["mean"], summary["std"], summary["n"])
    return summary.assign(ci_low=low, ci_high=high)


@dataclass(frozen=True)
class Paired:
    """A technique minus the baseline over runs paired by key (e.g. the same labelled subset)."""

    pairs: int
    diff: float  # mean paired difference
    ci_low: float  # its t interval; NaN below two pairs
    ci_high: float
    p: float  # two-sided paired t-test; NaN below two pairs or when all differences are equal


def paired_difference(technique: pd.Series, baseline: pd.Series) -> Paired:
    """Compare two Series of scores indexed by a unique pairing key; only keys in both count."""
    both = pd.concat([technique, baseline], axis=1, join="inner").dropna().to_numpy(dtype=float)
    diffs = both[:, 0] - both[:, 1]
    mean = float(diffs.mean()) if len(diffs) else math.nan
    if len(diffs) < 2:
        return Paired(len(diffs), mean, math.nan, math.nan, math.nan)
    if np.ptp(diffs) <= 1e-12 * max(1.0, abs(mean)):
        # Equal up to rounding: no spread, so no test (t would be 0/0, or huge from rounding noise).
        return Paired(len(diffs), mean, mean, mean, math.nan)
    low, high = t_interval(diffs)
    p = stats.ttest_rel(both[:, 0], both[:, 1]).pvalue
    return Paired(len(diffs), mean, low, high, float(p))


def can_pair(table: pd.DataFrame) -> bool:
    return PAIR in table and table[PAIR].notna().any()


def paired_table(table: pd.DataFrame, metric: str, baseline: str) -> pd.DataFrame:
    """Each technique against `baseline` at every budget both ran, runs paired on the `pair` column.

    Runs that share a key within a cell (e.g. training seeds on one subset) are averaged first, so
    each key is one pair. Columns: PAIRED_COLUMNS.
    """
    scores = table.dropna(subset=[PAIR]).groupby(["condition", "budget", PAIR])[metric].mean()
    cells = {key: cell.droplevel([0, 1]) for key, cell in scores.groupby(level=[0, 1])}
    rows = [
        {"condition": name, "budget": budget, **asdict(paired_difference(cell, cells[(baseline, budget)]))}
        for (name, budget), cell in cells.items()
        if name != baseline and (baseline, budget) in cells
    ]
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


def bootstrap_means(
    table: pd.DataFrame, metric: str, resamples: int = RESAMPLES, seed: int = SEED
) -> dict[Cell, np.ndarray]:
    """`resamples` bootstrap means per cell, each cell's runs drawn with replacement on their own.

    A cell with one run never varies, so intervals built on it understate the uncertainty.
    """
    rng = np.random.default_rng(seed)
    means = {}
    for cell, values in table.dropna(subset=[metric]).groupby(["condition", "budget"], sort=True)[metric]:
        values = values.to_numpy(dtype=float)
        means[cell] = values[rng.integers(len(values), size=(resamples, len(values)))].mean(axis=1)
    return means


def resampled_curve(means: dict[Cell, np.ndarray], condition: str) -> tuple[np.ndarray, np.ndarray]:
    """A condition's budgets (sorted) and its resampled mean curves, one row per resample."""
    budgets = sorted(budget for name, budget in means if name == condition)
    return np.array(budgets, dtype=float), np.column_stack([means[(condition, b)] for b in budgets])


def percentile_interval(samples: Iterable[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval, rounded outward to actual samples: no interpolation, so an
    infinite multiplier ("> max") stays infinite instead of turning into NaN."""
    samples, tail = np.asarray(list(samples), dtype=float), (1 - confidence) / 2
    return (
        float(np.quantile(samples, tail, method="lower")),
        float(np.quantile(samples, 1 - tail, method="higher")),
    )


def too_few_runs(counts: dict[Cell, int], cells: Iterable[Cell]) -> str:
    """Why an interval over `cells` cannot be given ("n=1 for `minilm` at 30 labels"), or "" when
    every cell has the two runs an interval needs: a cell of one run never varies in resamples,
    so an interval leaning on it would show only the other cells' spread."""
    single = [(name, budget) for name, budget in cells if counts.get((name, budget), 0) < MIN_RUNS]
    if not single:
        return ""
    name, budget = single[0]
    more = f" and {len(single) - 1} more cell(s)" if len(single) > 1 else ""
    return f"n={counts.get((name, budget), 0)} for `{name}` at {budget:g} labels{more}"


def efficiency_intervals(
    efficiency: pd.DataFrame, means: dict[Cell, np.ndarray], baseline: str, counts: dict[Cell, int]
) -> pd.DataFrame:
    """`efficiency` (from `efficiency_table`) plus the bootstrap interval of each multiplier, which
    resamples both conditions: the technique's cell and every cell of the baseline's curve. With
    fewer than two runs in any of them there is no interval (NaN), and `ci_missing` says why.

    ci_high is inf when the baseline misses the score in enough resamples ("> max"). A resample
    where the baseline already matches at its smallest budget counts at that budget, an upper
    bound; ci_low_at_most says the lower end is such a bound.
    """
    budgets, curves = resampled_curve(means, baseline)
    baseline_cells = [(baseline, budget) for budget in budgets]
    lows, highs, missing = [], [], []
    for row in efficiency.itertuples():
        why = too_few_runs(counts, [(row.condition, row.budget), *baseline_cells])
        scores = means[(row.condition, row.budget)]
        needed = [labels_needed(budgets, curve, score) for curve, score in zip(curves, scores)]
        low, high = (math.nan, math.nan) if why else percentile_interval(np.array(needed) / row.budget)
        lows.append(low)
        highs.append(high)
        missing.append(why)
    smallest = budgets[0] / efficiency["budget"]
    return efficiency.assign(ci_low=lows, ci_high=highs, ci_low_at_most=np.array(lows) <= smallest,
                             ci_missing=missing)


def aulc_intervals(
    summary: pd.DataFrame, means: dict[Cell, np.ndarray], span: tuple[float, float] | None,
    counts: dict[Cell, int],
) -> pd.DataFrame:
    """`aulc_table` (each condition over its own range) plus shared_aulc, ci_low, ci_high: the AULC
    over `span`, the range all conditions share, with its bootstrap interval. An area needs two
    budgets (a single shared budget gives none), an interval two runs in every cell of the curve;
    NaN where either is missing, and `ci_missing` says why."""
    table = aulc_table(summary)
    rows = []
    for condition in table["condition"]:
        if span is None or span[0] == span[1]:
            rows.append((math.nan, math.nan, math.nan, ""))
            continue
        curve = summary[summary["condition"] == condition]
        budgets, curves = resampled_curve(means, condition)
        why = too_few_runs(counts, [(condition, budget) for budget in budgets])
        interval = (math.nan, math.nan) if why else percentile_interval(
            [aulc_between(budgets, ys, *span) for ys in curves])
        rows.append((aulc_between(curve["budget"], curve["mean"], *span), *interval, why))
    shared, low, high, missing = zip(*rows) if rows else ((), (), (), ())
    return table.assign(shared_aulc=list(shared), ci_low=list(low), ci_high=list(high),
                        ci_missing=list(missing))


@dataclass
class Analysis:
    """Everything the report shows, with its uncertainty."""

    baseline: str
    summary: pd.DataFrame  # summarize() plus ci_low, ci_high
    efficiency: pd.DataFrame  # efficiency_table() plus ci_low, ci_high, ci_low_at_most
    aulc: pd.DataFrame  # aulc_table() plus shared_aulc, ci_low, ci_high
    shared_range: tuple[float, float] | None  # the budgets shared_aulc covers
    paired: pd.DataFrame | None  # paired_table(); None when runs carry no pairing key
    spread: pd.DataFrame | None = None  # seeds.spread_by_source(); None unless both seed axes were swept
    references: list[Reference] = field(default_factory=list)  # majority class, chance: no learning
    one_class: pd.DataFrame | None = None  # references.one_class_cells(): runs that learned one class


def analyse(
    table: pd.DataFrame, metric: str, baseline: str, resamples: int = RESAMPLES, seed: int = SEED
) -> Analysis:
    """Analyse one row per run: columns condition, budget, `metric`, and `pair` to pair runs."""
    summary = with_intervals(summarize(table, metric))
    means = bootstrap_means(table, metric, resamples, seed)
    counts = {(row.condition, row.budget): int(row.n) for row in summary.itertuples()}
    span = shared_range(summary)
    return Analysis(
        baseline=baseline,
        summary=summary,
        efficiency=efficiency_intervals(efficiency_table(summary, baseline), means, baseline, counts),
        aulc=aulc_intervals(summary, means, span, counts),
        shared_range=span,
        paired=paired_table(table, metric, baseline) if can_pair(table) else None,
        spread=spread_by_source(table, metric) if crossed(table) else None,
        references=reference_levels(table),
        one_class=one_class_cells(table),
    )


def cell_table(analysis: Analysis) -> pd.DataFrame:
    """One row per condition x budget with every number and interval of the report, for summary.csv."""
    efficiency = analysis.efficiency[["condition", "budget", "multiplier", "ci_low", "ci_high"]]
    cells = analysis.summary.merge(
        efficiency.rename(columns={"ci_low": "multiplier_ci_low", "ci_high": "multiplier_ci_high"}),
        on=["condition", "budget"],
        how="left",
    )
    if analysis.spread is not None:
        spread = analysis.spread[["condition", "budget", "sd_subsets", "sd_seeds"]]
        cells = cells.merge(spread, on=["condition", "budget"], how="left")
    if analysis.paired is None:
        return cells
    paired = analysis.paired.rename(columns={"ci_low": "diff_ci_low", "ci_high": "diff_ci_high"})
    cells = cells.merge(paired, on=["condition", "budget"], how="left")
    return cells.astype({"pairs": "Int64"})  # a count, blank for the baseline, not 3.0
