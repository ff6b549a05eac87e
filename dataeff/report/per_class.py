"""Per-label test results from a confusion matrix: where a classifier is right and what it
confuses, so a study can say *which* answers an arm gets wrong, not just how many."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch

from dataeff.report.markdown import markdown_table


def per_class(confusion: torch.Tensor, names: Sequence[str]) -> pd.DataFrame:
    """One row per label from `confusion[true, predicted]`: support, recall (the accuracy on that
    label), precision, and the label most often predicted instead."""
    counts = confusion.double()
    support, predicted, right = counts.sum(1), counts.sum(0), counts.diag()
    wrong = counts - torch.diag(right)
    rows = []
    for i, name in enumerate(names):
        top = int(wrong[i].argmax())
        rows.append({
            "label": name,
            "support": int(support[i]),
            "recall": float(right[i] / support[i]) if support[i] else float("nan"),
            "precision": float(right[i] / predicted[i]) if predicted[i] else float("nan"),
            "confused_with": names[top] if wrong[i, top] > 0 else "",
            "confused_count": int(wrong[i, top]),
        })
    return pd.DataFrame(rows)


def per_class_markdown(table: pd.DataFrame) -> str:
    rows = [[row.label, str(row.support), f"{100 * row.recall:.1f}", f"{100 * row.precision:.1f}",
             f"{row.confused_with} ({row.confused_count})" if row.confused_count else ""]
            for row in table.itertuples()]
    return markdown_table(["label", "support", "recall (%)", "precision (%)", "most confused with"],
                          rows)


def per_class_files(confusion: torch.Tensor, label_names) -> dict[str, str]:
    """`test_per_class.csv` and `.md`, as a run logs them: recall, precision and the commonest
    confusion of every label."""
    table = per_class(confusion, label_names)
    return {"test_per_class.csv": table.to_csv(index=False),
            "test_per_class.md": per_class_markdown(table) + "\n"}
