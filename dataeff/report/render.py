"""Turn the summary tables into Markdown and a learning-curve PNG."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from dataeff.report.curves import aulc_table, efficiency_table


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


def format_budget(budget: float) -> str:
    return f"{budget:.0f}" if float(budget).is_integer() else f"{budget:g}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ordered_conditions(summary: pd.DataFrame, baseline: str) -> list[str]:
    """The baseline first, then the others alphabetically."""
    others = sorted(set(summary["condition"]) - {baseline})
    return [baseline, *others] if baseline in set(summary["condition"]) else others


def _pivot_markdown(cells: pd.DataFrame, text: str, conditions: Sequence[str]) -> str:
    """A condition x budget table of the column `text`; "" where a cell has no runs."""
    budgets = sorted(cells["budget"].unique())
    lookup = {(row.condition, row.budget): getattr(row, text) for row in cells.itertuples()}
    rows = [
        [f"`{condition}`", *(lookup.get((condition, budget), "") for budget in budgets)]
        for condition in conditions
    ]
    return markdown_table(["condition", *map(format_budget, budgets)], rows)


def summary_markdown(summary: pd.DataFrame, baseline: str) -> str:
    """mean ± std (n) per condition x budget; std is "-" for a single run."""
    cells = summary.assign(
        text=[
            f"{row.mean:.3f} ± {row.std:.3f} (n={row.n})"
            if row.n > 1
            else f"{row.mean:.3f} ± - (n=1)"
            for row in summary.itertuples()
        ]
    )
    return _pivot_markdown(cells, "text", ordered_conditions(summary, baseline))


def efficiency_markdown(summary: pd.DataFrame, baseline: str) -> str:
    table = efficiency_table(summary, baseline)
    table["text"] = [
        f"{row.text} ({row.baseline_labels:.0f})" if row.kind == "interpolated" else row.text
        for row in table.itertuples()
    ]
    techniques = [c for c in ordered_conditions(summary, baseline) if c != baseline]
    return _pivot_markdown(table, "text", techniques)


def aulc_markdown(summary: pd.DataFrame, baseline: str) -> str:
    table = aulc_table(summary).set_index("condition")
    rows = [
        [
            f"`{condition}`",
            f"{table.at[condition, 'aulc']:.3f}",
            f"{format_budget(table.at[condition, 'min_budget'])}–"
            + format_budget(table.at[condition, "max_budget"]),
            str(table.at[condition, "budgets"]),
        ]
        for condition in ordered_conditions(summary, baseline)
    ]
    return markdown_table(["condition", "AULC", "budget range", "budgets"], rows)


def _header(context: ReportContext) -> list[str]:
    ids = context.parent_run_id
    study = f"parent run{'s' if ids and ',' in ids else ''} `{ids}`" if ids else "all runs"
    lines = [
        f"# Data-efficiency report: {context.experiment}",
        "",
        f"- Study: {study} of experiment `{context.experiment}` ({context.tracking_uri})",
        (
            f"- Metric: `{context.metric}`; label budget: `{context.budget}`; "
            f"condition: `{' / '.join(context.condition)}`; baseline: `{context.baseline}`"
        ),
        f"- Runs used: {context.runs_used} finished",
    ]
    return lines + [f"- {note}" for note in context.notes]


def report_markdown(summary: pd.DataFrame, context: ReportContext, plot_name: str) -> str:
    metric, baseline = context.metric, context.baseline
    sections = _header(context) + [
        "",
        f"## `{metric}`: mean ± std (sample std over runs) by label budget",
        "",
        summary_markdown(summary, baseline),
        "",
        f"![learning curve]({plot_name})",
        "",
        f"## Data efficiency against `{baseline}`",
        "",
    ]
    if len(set(summary["condition"])) > 1:
        sections += [
            (
                f"Labels `{baseline}` needs to match each technique's mean score (interpolated "
                "linearly in log10 labels), divided by the technique's labels; the labels needed "
                f"are in brackets. `> max`: `{baseline}` never matches it within its largest "
                f"budget. `<= Nx`: `{baseline}` already matches it at its smallest budget, so the "
                "true need may be lower."
            ),
            "",
            efficiency_markdown(summary, baseline),
        ]
    else:
        sections.append(f"Only `{baseline}` was run: there is no technique to compare.")
    sections += [
        "",
        "## Area under the learning curve",
        "",
        (
            "Trapezoid rule over log10(labels), divided by the log10 range of the condition's "
            f"budgets, so it is in `{metric}` units; compare conditions over the same range."
        ),
        "",
        aulc_markdown(summary, baseline),
        "",
    ]
    return "\n".join(sections)


def plot_learning_curves(summary: pd.DataFrame, context: ReportContext, path: Path) -> Path:
    """Mean ± std per condition against labels on a log x axis, saved as a PNG."""
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(figure)  # render with Agg, without pyplot's global state or a display
    axes = figure.subplots()
    for condition in ordered_conditions(summary, context.baseline):
        curve = summary[summary["condition"] == condition].sort_values("budget")
        line = axes.plot(curve["budget"], curve["mean"], marker="o", label=condition)[0]
        axes.fill_between(
            curve["budget"],
            curve["mean"] - curve["std"],
            curve["mean"] + curve["std"],
            color=line.get_color(),
            alpha=0.2,
        )
    axes.set_xscale("log")
    budgets = sorted(summary["budget"].unique())
    axes.set_xticks(budgets, labels=[format_budget(b) for b in budgets])  # the budgets run
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel(f"labelled examples ({context.budget})")
    axes.set_ylabel(f"{context.metric} (mean ± std)")
    axes.set_title(context.experiment)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(title=" / ".join(context.condition))
    figure.savefig(path, dpi=120)
    return path
