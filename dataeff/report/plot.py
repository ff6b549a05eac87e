"""The learning-curve PNG: each condition's mean and t interval against labels (log scale), the
majority-class and chance levels, and a star where the paired difference is significant."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from dataeff.report.headline import LEVEL, format_budget, ordered_conditions
from dataeff.report.render import ReportContext
from dataeff.report.uncertainty import ALPHA, Analysis


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
    for level, style in zip(analysis.references, ("--", ":")):
        axes.axhline(level.value, color="gray", linestyle=style, linewidth=1,
                     label=f"{level.label} ({level.value:.3f})")
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

