"""Turn an Analysis into Markdown and a learning-curve PNG."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

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
from dataeff.report.seeds import spread_summary
from dataeff.report.uncertainty import ALPHA, RESAMPLES, SEED, Analysis

METHOD = (
    f"Intervals: {LEVEL} t interval over runs for means and paired differences; {LEVEL} percentile "
    f"bootstrap ({RESAMPLES} resamples of the runs within each condition x budget, seed {SEED}) "
    "for multipliers and AULC."
)


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


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _pivot_markdown(cells: pd.DataFrame, text: str, conditions: Sequence[str]) -> str:
    """A condition x budget table of the column `text`; "" where a cell has no runs."""
    budgets = sorted(cells["budget"].unique())
    lookup = {(row.condition, row.budget): getattr(row, text) for row in cells.itertuples()}
    rows = [
        [f"`{condition}`", *(lookup.get((condition, budget), "") for budget in budgets)]
        for condition in conditions
    ]
    return markdown_table(["condition", *map(format_budget, budgets)], rows)


def format_interval(low: float, high: float, signed: bool = False) -> str:
    """[low, high] with 3 decimals, or "-" when there is none (a single run or pair)."""
    if math.isnan(low):
        return "[-]"
    number = "{:+.3f}" if signed else "{:.3f}"
    return f"[{number.format(low)}, {number.format(high)}]"


def summary_markdown(summary: pd.DataFrame, baseline: str) -> str:
    """mean ± std [t interval] (n) per condition x budget; "-" for a single run."""
    cells = summary.assign(
        text=[
            f"{row.mean:.3f} ± {row.std:.3f} {format_interval(row.ci_low, row.ci_high)} (n={row.n})"
            if row.n > 1
            else f"{row.mean:.3f} ± - [-] (n={row.n})"
            for row in summary.itertuples()
        ]
    )
    return _pivot_markdown(cells, "text", ordered_conditions(summary, baseline))


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
        rows.append(
            [
                f"`{condition}`",
                value,
                format_interval(row["ci_low"], row["ci_high"]),
                f"{row['aulc']:.3f}",
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
        lines.append("- Some cells have a single run: they have no t interval, and they never vary in "
                     "resamples, so bootstrap intervals that lean on them are too narrow.")
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
        summary_markdown(analysis.summary, analysis.baseline),
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


def _significant(analysis: Analysis) -> set[tuple[str, float]]:
    """The technique x budget cells whose paired difference from the baseline has p < ALPHA."""
    paired = analysis.paired
    if paired is None:
        return set()
    hits = paired[paired["p"] < ALPHA]
    return set(zip(hits["condition"], hits["budget"]))


def plot_learning_curves(analysis: Analysis, context: ReportContext, path: Path) -> Path:
    """Mean and its t interval per condition against labels on a log x axis, saved as a PNG; a star
    above a point whose paired difference from the baseline is significant."""
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(figure)  # render with Agg, without pyplot's global state or a display
    axes = figure.subplots()
    summary, significant = analysis.summary, _significant(analysis)
    for condition in ordered_conditions(summary, context.baseline):
        curve = summary[summary["condition"] == condition].sort_values("budget")
        line = axes.plot(curve["budget"], curve["mean"], marker="o", label=condition)[0]
        color = line.get_color()
        # A cell of one run has no interval (NaN): the band has a gap there.
        axes.fill_between(curve["budget"], curve["ci_low"], curve["ci_high"], color=color, alpha=0.2)
        for row in curve.itertuples():
            if (condition, row.budget) in significant:
                axes.annotate("*", (row.budget, row.mean), xytext=(0, 5), textcoords="offset points",
                              ha="center", color=color, fontsize=14)
    axes.set_xscale("log")
    budgets = sorted(summary["budget"].unique())
    axes.set_xticks(budgets, labels=[format_budget(b) for b in budgets])  # the budgets run
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel(f"labelled examples ({context.budget})")
    axes.set_ylabel(f"{context.metric} (mean, {LEVEL} t interval)")
    title = context.experiment
    if significant:
        title += f"\n* paired difference from {context.baseline}: p < {ALPHA}"
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(title=" / ".join(context.condition))
    figure.savefig(path, dpi=120)
    return path

