"""Rows of a user's table: cells as text, labels in a stable order, and where a row is in its file."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd


def cell(value) -> str:
    """A cell as stripped text; missing -> "". 1.0 -> "1": an int column with a gap reads as float."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def label_order(label: str) -> tuple:
    """Integer labels in numeric order ("2" before "10"), so class ids match them; then the rest."""
    try:
        return (0, int(label), label)
    except ValueError:
        return (1, 0, label)


def where(source) -> str:
    return str(getattr(source, "path", source))


def line(source, row: int) -> str:
    """Where row `row` (0-based, data rows only) of a source is, as an editor shows it."""
    path = getattr(source, "path", None)
    fmt = getattr(source, "format", None) or (Path(path).suffix.lstrip(".").lower() if path else "")
    if fmt in ("csv", "tsv"):
        return f"Line {row + 2} of {path} (row {row + 1} after the header)"
    if fmt in ("jsonl", "json"):
        return f"Line {row + 1} of {path}"
    return f"Row {row + 1} of {where(source)}"
