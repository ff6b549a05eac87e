"""Plain-language summary lines for the top of the report, and the number formats they share with
the report's tables."""

from __future__ import annotations

import math

import pandas as pd

from dataeff.report.curves import ABOVE_MAX, AT_MOST, format_ratio
from dataeff.report.references import one_class_lines
from dataeff.report.uncertainty import CONFIDENCE, Analysis

LEVEL = f"{CONFIDENCE:.0%}"


def format_budget(budget: float) -> str:
    return f"{budget:.0f}" if float(budget).is_integer() else f"{budget:g}"


def budget_range(low: float, high: float) -> str:
    return format_budget(low) if low == high else f"{format_budget(low)}–{format_budget(high)}"


def format_p(p: float) -> str:
    if math.isnan(p):  # e.g. every pair differs by exactly the same amount
        return "p n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def ratio_interval(row) -> str:
    """A multiplier's bootstrap interval: "12–40x", "1.8x to > max", "> max"; "<= " where its lower
    end is a resample in which the baseline already matched at its smallest budget; "n<2" where a
    compared cell has a single run."""
    low, high = row.ci_low, row.ci_high
    if getattr(row, "ci_missing", ""):
        return "n<2"
    if math.isnan(low):
        return "-"
    if math.isinf(low):
        return "> max"
    upper = "> max" if math.isinf(high) else f"{format_ratio(high)}x"
    if low == high:  # every resample gave the same multiplier
        return f"{'<= ' if row.ci_low_at_most else ''}{upper}"
    if row.ci_low_at_most or math.isinf(high):
        return f"{'<= ' if row.ci_low_at_most else ''}{format_ratio(low)}x to {upper}"
    return f"{format_ratio(low)}–{upper}"


def ordered_conditions(summary: pd.DataFrame, baseline: str) -> list[str]:
    """The baseline first, then the others alphabetically."""
    others = sorted(set(summary["condition"]) - {baseline})
    return [baseline, *others] if baseline in set(summary["condition"]) else others


def headline_budget(summary: pd.DataFrame, condition: str, baseline: str) -> float:
    """The smallest budget a technique shares with the baseline, else its smallest: a choice fixed
    in advance, so a headline is never the best-looking budget picked after the fact."""
    budgets = summary.groupby("condition")["budget"].apply(set)
    return min((budgets[condition] & budgets.get(baseline, set())) or budgets[condition])


def efficiency_sentence(row, baseline: str, metric: str) -> str:
    """One row of the efficiency table (with its interval, or why it has none) in words."""
    technique, score = f"`{row.condition}`", f"{row.mean:.3g} {metric}"
    at = f"at {format_budget(row.budget)} labels"
    ci = f"no interval: {row.ci_missing}" if row.ci_missing else f"{LEVEL} CI {ratio_interval(row)}"
    if row.kind == ABOVE_MAX:
        return (f"`{baseline}` never reaches {technique}'s {score} {at} within its largest budget "
                f"(multiplier > max, {ci})")
    if row.kind == AT_MOST:
        return (f"`{baseline}` already reaches {technique}'s {score} {at} with its smallest budget "
                f"(multiplier {row.text}, {ci})")
    if row.multiplier >= 1:
        fewer = format_ratio(row.multiplier)
        return f"{technique} needs {fewer}x fewer labels than `{baseline}` to reach {score} {at} ({ci})"
    more = format_ratio(1 / row.multiplier)
    return (f"{technique} needs {more}x more labels than `{baseline}` to reach {score}, its score "
            f"{at} (multiplier {row.text}, {ci})")


def paired_sentence(row, baseline: str, metric: str, pair: str | None) -> str:
    """One row of the paired table in words."""
    at = f"at {format_budget(row.budget)} labels"
    head = f"`{row.condition}` vs `{baseline}` {at}: {row.diff:+.3g} {metric}"
    pairs = f"{row.pairs} pair{'' if row.pairs == 1 else 's'} by `{pair}`"
    if row.pairs < 2:
        return f"{head} ({pairs}: no interval or test)"
    return f"{head} ({LEVEL} CI {row.ci_low:+.3g} to {row.ci_high:+.3g}, {format_p(row.p)}, {pairs})"


def aulc_sentence(analysis: Analysis) -> str:
    if analysis.shared_range is None:
        return "The conditions' budget ranges do not overlap: there is no AULC over a shared range"
    low, high = analysis.shared_range
    if low == high:
        return (f"The conditions share a single budget ({format_budget(low)} labels): an area under the "
                "learning curve needs at least two, so there is no AULC")
    table = analysis.aulc.set_index("condition")
    parts = [f"`{name}` {table.at[name, 'shared_aulc']:.3g} ({aulc_interval(table.loc[name])})"
             for name in ordered_conditions(analysis.summary, analysis.baseline)]
    return f"AULC over the {budget_range(low, high)} labels all conditions share: " + ", ".join(parts)


def aulc_interval(row) -> str:
    if row["ci_missing"]:
        return f"no interval: {row['ci_missing']}"
    return f"{LEVEL} CI {row['ci_low']:.3g} to {row['ci_high']:.3g}"


def _row_at(table: pd.DataFrame | None, condition: str, budget: float):
    if table is None:
        return None
    rows = table[(table["condition"] == condition) & (table["budget"] == budget)]
    return next(rows.itertuples(), None)


def headline_lines(analysis: Analysis, metric: str, pair: str | None) -> list[str]:
    """Per technique, at its headline budget: the multiplier and the paired difference, in words;
    then the AULC of every condition over their shared range; first, any cell whose runs learned
    one class."""
    baseline = analysis.baseline
    conditions = ordered_conditions(analysis.summary, baseline)
    majority = next((level for level in analysis.references if level.label == "majority class"), None)
    warnings = one_class_lines(analysis.one_class, majority) if analysis.one_class is not None else []
    if len(conditions) < 2:
        return [*warnings, f"Only `{baseline}` was run: there is no technique to compare"]
    lines = list(warnings)
    for condition in conditions[1:]:
        budget = headline_budget(analysis.summary, condition, baseline)
        lines.append(efficiency_sentence(_row_at(analysis.efficiency, condition, budget), baseline, metric))
        paired = _row_at(analysis.paired, condition, budget)
        if paired is not None and paired.pairs > 0:
            lines.append(paired_sentence(paired, baseline, metric, pair))
    return [*lines, aulc_sentence(analysis)]
