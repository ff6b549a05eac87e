"""Rows of a user's table: cells as text, labels in a stable order, and where a row is in its file."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from dataeff.errors import UserError


class Located(Protocol):
    """What a message needs of a source (`dataeff.data.sources.Source`, which reads its tables
    through this module): the file it read, if any, and that file's format."""

    path: str | None
    format: str | None


# What a spreadsheet or pandas writes for an empty cell (pandas' default na_values): in a labelled
# table such a cell is missing, not the text "NaN" (which would become a class of its own).
MISSING_MARKERS = frozenset({"nan", "NaN", "-nan", "-NaN", "NA", "N/A", "n/a", "#N/A", "#NA", "<NA>", "NULL",
                             "null", "None"})


def cell(value) -> str:
    """A cell as stripped text; missing -> "". 1.0 -> "1": an int column with a gap reads as float."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def is_plain(value) -> bool:
    """A text, a number or a missing value; not a list, an object or bytes, whose str() is no text."""
    return value is None or value is pd.NA or isinstance(value, (str, int, float, np.number, np.bool_))


def column_text(table: pd.DataFrame, column: str, source: Located, setting: str) -> pd.Series:
    """One column as stripped text ("" where a cell is empty), refusing cells that hold no plain
    value (a JSON list or object, a parquet struct) with their line and the setting to change."""
    values = table[column]
    nested = ~values.map(is_plain)
    if nested.any():
        row = int(nested.to_numpy().argmax())
        value = values.iloc[row]
        shown = repr(value if not hasattr(value, "tolist") else value.tolist())
        kind = type(value).__name__
        raise UserError(f"{line(source, row)} holds {kind} {shown[:80]} in column {column!r}, "
                        f"not a text, a number or a label ({int(nested.sum())} of {len(values)} cells are "
                        f"like it). dataeff trains on plain cells: flatten that column into text, or point "
                        f"{setting} at a column that holds it.")
    return values.map(cell)


def missing_marker(value: str) -> bool:
    return value in MISSING_MARKERS


def label_order(label: str) -> tuple:
    """Integer labels in numeric order ("2" before "10"), so class ids match them; then the rest."""
    try:
        return (0, int(label), label)
    except ValueError:
        return (1, 0, label)


def where(source: Located) -> str:
    return str(source.path or source)


def line_number(source: Located, row: int) -> int | None:
    """The line of a text file that holds data row `row` (0-based; a csv/tsv header is line 1),
    or None for sources without lines (parquet, a saved dataset)."""
    path = source.path
    fmt = source.format or (Path(path).suffix.lstrip(".").lower() if path else "")
    return {"csv": row + 2, "tsv": row + 2, "jsonl": row + 1, "json": row + 1, "txt": row + 1}.get(fmt)


def line(source: Located, row: int) -> str:
    """Where row `row` (0-based, data rows only) of a source is, as an editor shows it."""
    number, path = line_number(source, row), source.path
    if number is not None and number == row + 2:
        return f"Line {number} of {path} (row {row + 1} after the header)"
    if number is not None:
        return f"Line {number} of {path}"
    return f"Row {row + 1} of {where(source)}"
