"""What a score means next to no learning at all: the majority-class and chance levels each
classification run logs for its test set (`<split>/majority_<metric>`, `<split>/chance_<metric>`),
and the runs whose predictions went almost all to one class (`<split>/top_prediction_share`).

A run at 30 labels that scores 0.64 where always answering the commonest label scores 0.634 has
learned the label distribution, not the task; a report that shows no such line lets it pass as a
result. Pure pandas: the columns come from `mlflow_runs.study_table`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

ONE_CLASS = 0.95  # a run predicting its top class for this share of the examples or more
REFERENCES = {"majority": "majority class", "chance": "chance"}


def reference_keys(metric: str) -> dict[str, str]:
    """The metric keys of the references for `metric` ("test/accuracy" -> "test/majority_accuracy",
    ...) and of the prediction share, by the column name `study_table` gives them."""
    split, _, name = metric.rpartition("/")
    prefix = f"{split}/" if split else ""
    return {**{column: f"{prefix}{column}_{name}" for column in REFERENCES},
            "top_share": f"{prefix}top_prediction_share"}


@dataclass(frozen=True)
class Reference:
    label: str  # "majority class", "chance"
    value: float  # the median over the runs (one test set: they all agree)
    low: float  # the range over runs: different test sets (a sweep over data) disagree
    high: float

    def text(self) -> str:
        spread = "" if self.high - self.low < 5e-4 else f" ({self.low:.3f}–{self.high:.3f} over runs)"
        return f"{self.value:.3f}{spread}"


def reference_levels(table: pd.DataFrame) -> list[Reference]:
    """The references the runs of `table` logged, majority first."""
    levels = []
    for column, label in REFERENCES.items():
        values = pd.to_numeric(table.get(column, pd.Series(dtype=float)), errors="coerce").dropna()
        if not values.empty:
            levels.append(Reference(label, float(values.median()), float(values.min()), float(values.max())))
    return levels


def one_class_cells(table: pd.DataFrame) -> pd.DataFrame:
    """Per condition x budget with such runs: how many of its runs predicted one class for at least
    ONE_CLASS of the test examples. Columns: condition, budget, one_class, runs."""
    columns = ["condition", "budget", "one_class", "runs"]
    if "top_share" not in table:
        return pd.DataFrame(columns=columns)
    flagged = pd.to_numeric(table["top_share"], errors="coerce") >= ONE_CLASS
    cells = table.assign(one_class=flagged).groupby(["condition", "budget"])["one_class"]
    counts = cells.agg(one_class="sum", runs="count").reset_index()
    return counts[counts["one_class"] > 0][columns].reset_index(drop=True)


def one_class_lines(cells: pd.DataFrame, majority: Reference | None) -> list[str]:
    """A warning per cell whose runs answered (almost) one class, in words."""
    beside = f" (the majority class alone scores {majority.value:.3f})" if majority else ""
    return [f"⚠ {int(row.one_class)} of {int(row.runs)} `{row.condition}` run(s) at {row.budget:g} labels "
            f"predicted one class for at least {ONE_CLASS:.0%} of the test examples{beside}: they learned "
            "the label distribution, not the task" for row in cells.itertuples()]
