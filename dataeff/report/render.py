"""Turn an Analysis into Markdown (the learning-curve PNG: `plot`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from dataeff.report.curves import INTERPOLATED
from dataeff.report.headline import (
    LEVEL,
    budget_range,
    format_budget,
    format_p,
    headline_lines,
    ordered_conditions,
    ratio_interval,
)
from dataeff.report.markdown import markdown_table
from dataeff.report.references import ONE_CLASS, Reference
from dataeff.report.seeds import spread_summary
from dataeff.report.uncertainty import ALPHA, RESAMPLES, SEED, Analysis

METHOD = (
    f"Intervals: {LEVEL} t interval over runs for means and paired differences; {LEVEL} percentile "
    f"bootstrap ({RESAMPLES} resamples of the runs within each condition x budget, seed {SEED}) "
    "for multipliers and AULC; each needs at least two runs in every cell it compares."
)
REFERENCE_MEANING = {"majority class": "the test set's commonest label, predicted for every example",
                     "chance": "what guessing at random scores: a uniform guess among the classes, or for "
                               "retrieval a random ranking"}


@dataclass
class ReportContext:
    """What the report is about, for its header."""

    experiment: str
    parent_run_id: str | None
    tracking_uri: str
    metric: str
    budget: str
    condition: Sequence[str]
    baseline: str
    runs_used: int
    notes: list[str] = field(default_factory=list)
    pair: str | None = None  # the tag/param that pairs runs across conditions
    tuned: pd.DataFrame | None = None  # mlflow_runs.tuned_table(): values chosen on validation per cell


def _pivot_markdown(cells: pd.DataFrame, text: str, conditions: Sequence[str],
                    levels: Sequence[Reference] = ()) -> str:
    """A condition x budget table of the column `text`; "" where a cell has no runs; then a row per
    reference level (the same at every budget)."""
    budgets = sorted(cells["budget"].unique())
    lookup = {(row.condition, row.budget): getattr(row, text) for row in cells.itertuples()}
    rows = [
        [f"`{condition}`", *(lookup.get((condition, budget), "") for budget in budgets)]
        for condition in conditions
    ]
    rows += [[f"*{level.label}*", *([level.text()] * len(budgets))] for level in levels]
    return markdown_table(["condition", *map(format_budget, budgets)], rows)


def format_interval(low: float, high: float, signed: bool = False) -> str:
    """[low, high] with 3 decimals, or "-" when there is none (a single run or pair)."""
    if math.isnan(low):
        return "[-]"
    number = "{:+.3f}" if signed else "{:.3f}"
    return f"[{number.format(low)}, {number.format(high)}]"


def summary_markdown(analysis: Analysis) -> str:
    """mean ± std [t interval] (n) per condition x budget; "-" for a single run; ⚠ where runs
    learned one class; the majority-class and chance levels below."""
    summary = analysis.summary
    flagged = set() if analysis.one_class is None else set(zip(analysis.one_class["condition"],
                                                               analysis.one_class["budget"]))
    cells = summary.assign(
        text=[
            (f"{row.mean:.3f} ± {row.std:.3f} {format_interval(row.ci_low, row.ci_high)} (n={row.n})"
             if row.n > 1 else f"{row.mean:.3f} ± - [-] (n={row.n})")
            + (" ⚠" if (row.condition, row.budget) in flagged else "")
            for row in summary.itertuples()
        ]
    )
    return _pivot_markdown(cells, "text", ordered_conditions(summary, analysis.baseline), analysis.references)


def _efficiency_text(row) -> str:
    labels = f" ({row.baseline_labels:.0f})" if row.kind == INTERPOLATED else ""
    return f"{row.text}{labels} [{ratio_interval(row)}]"


def efficiency_markdown(analysis: Analysis) -> str:
    """Multiplier (labels the baseline needs) [bootstrap interval] per technique x budget."""
    table = analysis.efficiency
    table = table.assign(text=[_efficiency_text(row) for row in table.itertuples()])
    return _pivot_markdown(table, "text", ordered_conditions(analysis.summary, analysis.baseline)[1:])


def _paired_text(row) -> str:
    if row.pairs < 2:
        return f"{row.diff:+.3f} (1 pair)" if row.pairs == 1 else "no pairs"
    interval = format_interval(row.ci_low, row.ci_high, signed=True)
    star = " *" if row.p < ALPHA else ""
    return f"{row.diff:+.3f} {interval} {format_p(row.p)}{star} ({row.pairs} pairs)"


def paired_markdown(analysis: Analysis) -> str:
    table = analysis.paired.assign(text=[_paired_text(row) for row in analysis.paired.itertuples()])
    return _pivot_markdown(table, "text", ordered_conditions(analysis.summary, analysis.baseline)[1:])


def aulc_markdown(analysis: Analysis) -> str:
    table = analysis.aulc.set_index("condition")
    shared = budget_range(*analysis.shared_range) if analysis.shared_range else "a shared range"
    rows = []
    for condition in ordered_conditions(analysis.summary, analysis.baseline):
        row = table.loc[condition]
        value = "-" if math.isnan(row["shared_aulc"]) else f"{row['shared_aulc']:.3f}"
        interval = "[n<2]" if row["ci_missing"] else format_interval(row["ci_low"], row["ci_high"])
        rows.append(
            [
                f"`{condition}`",
                value,
                interval,
                "-" if math.isnan(row["aulc"]) else f"{row['aulc']:.3f}",
                budget_range(row["min_budget"], row["max_budget"]),
                str(int(row["budgets"])),
            ]
        )
    header = ["condition", f"AULC over {shared}", f"{LEVEL} CI", "AULC over own range", "own range"]
    return markdown_table([*header, "budgets"], rows)


def _header(context: ReportContext, analysis: Analysis) -> list[str]:
    ids = context.parent_run_id
    study = f"parent run{'s' if ids and ',' in ids else ''} `{ids}`" if ids else "all runs"
    lines = [
        f"- Study: {study} of experiment `{context.experiment}` ({context.tracking_uri})",
        (
            f"- Metric: `{context.metric}`; label budget: `{context.budget}`; "
            f"condition: `{' / '.join(context.condition)}`; baseline: `{context.baseline}`"
        ),
        f"- Runs used: {context.runs_used} finished",
        f"- {METHOD}",
    ]
    if (analysis.summary["n"] < 2).any():
        lines.append("- Some cells have a single run: no interval is given that leans on them (t, "
                     "multiplier or AULC: `n<2`), since one run shows nothing of the spread.")
    lines += [f"- Reference, {level.label}: {level.text()} ({REFERENCE_MEANING[level.label]})"
              for level in analysis.references]
    if analysis.one_class is not None and not analysis.one_class.empty:
        lines.append(f"- ⚠: runs in that cell predicted one class for at least {ONE_CLASS:.0%} of the test "
                     "examples (the summary says how many).")
    return lines + [f"- {note}" for note in context.notes]


def _comparisons(analysis: Analysis, context: ReportContext) -> list[str]:
    baseline, pair = context.baseline, f"`{context.pair}`" if context.pair else "a pairing key"
    if len(set(analysis.summary["condition"])) == 1:
        return []  # the summary says so
    sections = [f"## Paired difference against `{baseline}`", ""]
    if analysis.paired is None or analysis.paired.empty:
        sections += [f"No runs of a technique and `{baseline}` share {pair} at a budget: no paired test.", ""]
    else:
        sections += [
            (
                f"Technique minus `{baseline}` in `{context.metric}`, over runs paired by {pair} (the "
                "same labelled subset; runs sharing a key in a cell are averaged first), with its "
                f"{LEVEL} t interval, the two-sided paired t-test p-value and the number of pairs. "
                f"`*`: p < {ALPHA}."
            ),
            "",
            paired_markdown(analysis),
            "",
        ]
    return sections + [
        f"## Data efficiency against `{baseline}`",
        "",
        (
            f"Labels `{baseline}` needs to match each technique's mean score (interpolated linearly "
            "in log10 labels), divided by the technique's labels; the labels needed are in round "
            f"brackets, the {LEVEL} bootstrap interval in square ones. `> max`: `{baseline}` never "
            f"matches it within its largest budget. `<= Nx`: `{baseline}` already matches it at its "
            "smallest budget, so the true need may be lower (in an interval: in some resamples)."
        ),
        "",
        efficiency_markdown(analysis),
        "",
    ]


def report_markdown(analysis: Analysis, context: ReportContext, plot_name: str) -> str:
    metric = context.metric
    sections = [f"# Data-efficiency report: {context.experiment}", "", "## Summary", ""]
    if len(set(analysis.summary["condition"])) > 1:
        sections += [
            f"Each technique at the smallest budget it shares with `{context.baseline}` (the tables "
            "below give every budget):",
            "",
        ]
    sections += [f"- {line}" for line in headline_lines(analysis, context.metric, context.pair)]
    sections += ["", "## Study", "", *_header(context, analysis), ""]
    sections += [
        f"## `{metric}`: mean ± std (sample std over runs) [{LEVEL} t interval over runs] (n)",
        "",
        summary_markdown(analysis),
        "",
        f"![learning curve]({plot_name})",
        "",
        *_comparisons(analysis, context),
        *_spread_section(analysis, context),
        *_tuned_section(analysis, context),
        "## Area under the learning curve",
        "",
        (
            "Trapezoid rule over log10(labels), divided by the log10 range, so it is in "
            f"`{metric}` units. Conditions are compared over the budget range they all share (read "
            "off each curve by interpolation at its ends), with its bootstrap interval; each "
            "condition's AULC over its own budgets is beside it."
        ),
        "",
        aulc_markdown(analysis),
        "",
    ]
    return "\n".join(sections)


def _spread_section(analysis: Analysis, context: ReportContext) -> list[str]:
    """Only for a study that swept the training seed apart from the labelled subset."""
    if analysis.spread is None:
        return []
    cells = analysis.spread.assign(text=[
        f"{_std_text(row.sd_subsets)} / {_std_text(row.sd_seeds)} ({row.subsets} x {row.seeds})"
        for row in analysis.spread.itertuples()])
    return [
        "## Where the spread comes from", "",
        (f"Std of `{context.metric}` between labelled subsets (`{context.pair}`; each subset's mean "
         "over its training seeds) / pooled std between training seeds (`seed`) on one subset, "
         "(subsets x training seeds). " + spread_summary(analysis.spread)), "",
        _pivot_markdown(cells, "text", ordered_conditions(analysis.summary, analysis.baseline)), "",
    ]


def _tuned_section(analysis: Analysis, context: ReportContext) -> list[str]:
    if context.tuned is None:
        return []
    params = ", ".join(f"`{p}`" for p in sorted(set(context.tuned["param"])))
    return ["## Tuned on validation", "",
            (f"{params} as chosen per condition and budget on validation data only (tune=..., the tag "
             "tune.scores holds every value's score); each cell's runs trained with it."), "",
            _pivot_markdown(context.tuned, "value", ordered_conditions(analysis.summary, analysis.baseline)),
            ""]


def _std_text(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.4f}"
