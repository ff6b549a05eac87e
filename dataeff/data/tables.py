"""A user's labelled table made usable: its columns renamed, blank rows refused or dropped, labels
checked against training's, and a class-stratified validation set split off when there is no file.

Row numbers in the source stay the pandas index, so a row can be named by its line in the file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dataeff.data.rows import MISSING_MARKERS, column_text, label_order, line, missing_marker, where
from dataeff.errors import UserError


def read_columns(source, columns: dict[str, str | None], split: str,
                 on_bad_row: str) -> tuple[pd.DataFrame, int]:
    """The used columns of `source.table()` as stripped strings, renamed to their roles (text, pair,
    label, ...); and how many rows `on_bad_row=skip` dropped for a blank cell."""
    table = source.table().reset_index(drop=True)  # row numbers, whatever index the source had
    used = {role: column for role, column in columns.items() if column is not None}
    for role, column in used.items():
        if column not in table.columns:
            names = list(map(str, table.columns))
            raise UserError(f"Column {column!r} is not in the {split} data {where(source)}; its columns "
                            f"are {names}. Set data.{role}_column= to one of them, e.g. "
                            f"data.{role}_column={names[0] if names else 'text'}.{separator_hint(names)}")
    given = pd.DataFrame({role: column_text(table, column, source, f"data.{role}_column")
                          for role, column in used.items()})
    if "label" in used:
        refuse_fractional_labels(table[used["label"]], source)
    missing = (given == "") | given.map(missing_marker)
    blank = missing.any(axis=1)
    if blank.any() and on_bad_row == "error":
        row = int(blank.to_numpy().argmax())
        empty = [used[role] for role in used if missing.at[row, role]]
        markers = sorted({given.at[row, role] for role in used if given.at[row, role] in MISSING_MARKERS})
        said = f" (it holds {', '.join(map(repr, markers))}, which marks a missing value)" if markers else ""
        raise UserError(f"{line(source, row)} has no {' and no '.join(map(repr, empty))}{said}. Fix the "
                        f"file, or drop such rows with data.on_bad_row=skip ({int(blank.sum())} of "
                        f"{len(given)} rows of the {split} data would be dropped).")
    cleaned = given[~blank]
    if "label" in cleaned:
        cleaned = cleaned.assign(label=canonical_labels(cleaned["label"]))
    if cleaned.empty:
        raise UserError(f"The {split} data {where(source)} has no row with both a text and a label; "
                        f"check data.{split}.path and the data.*_column settings.")
    return cleaned, int(blank.sum())


def separator_hint(names: list[str]) -> str:
    """A header read as one column that holds another separator: the file is not what its suffix says."""
    found = [sep for sep in (";", "\t", "|", ",") if len(names) == 1 and sep in names[0]]
    if not found:
        return ""
    shown = {"\t": "tabs"}.get(found[0], repr(found[0]))
    return (f" Its header reads as one column split by {shown}: a .csv is read with commas and a .tsv "
            "with tabs, so save it with one of those (or set data.<split>.format=tsv for tabs).")


def canonical_labels(labels: pd.Series) -> pd.Series:
    """"1" and "1.0" are one class: a label column that is all whole numbers (some written as floats by
    an export) reads as integers."""
    numbers = pd.to_numeric(labels, errors="coerce")
    if numbers.isna().any() or (numbers % 1 != 0).any():
        return labels
    return numbers.astype("int64").astype(str)


def refuse_fractional_labels(labels: pd.Series, source) -> None:
    """A label of 0.73 is a measurement, not a class: a regression target in a classifier's table."""
    if labels.dtype.kind != "f":  # only a float column (jsonl, parquet) holds fractions
        return
    fractional = labels.notna() & (labels % 1 != 0)
    if fractional.any():
        row = int(fractional.to_numpy().argmax())
        raise UserError(f"{line(source, row)} has the label {labels.iloc[row]}, a number between classes "
                        f"({int(fractional.sum())} of {len(labels)} labels are fractions). dataeff trains "
                        "classifiers on class labels (names or whole numbers); check data.label_column.")


def refuse_unknown_labels(table: pd.DataFrame, known: list[str], split: str, source) -> None:
    """Refuse a validation or test label that training does not have: no class id exists for it."""
    unknown = sorted(set(table["label"]) - set(known), key=label_order)
    if unknown:
        raise UserError(f"Label(s) {', '.join(map(repr, unknown[:5]))} in the {split} data "
                        f"{where(source)} are not in the training labels {known}; "
                        "fix the file or add examples of it to the training data.")


def split_validation(full: pd.DataFrame, fraction: float, seed: int,
                     source) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the rest, validation): `fraction` of each class, at least one and never its last example,
    drawn by `seed` alone, so the split stays put whatever budget is drawn from the rest."""
    if not 0 < fraction < 1:
        raise UserError(f"data.val_fraction={fraction} must be in (0, 1) when no validation "
                        "file is given; set e.g. data.val_fraction=0.1 or data.val.path=...")
    groups = full.groupby("label").indices
    rng = np.random.default_rng(seed)
    is_val = np.zeros(len(full), dtype=bool)
    for label in sorted(groups, key=label_order):  # fixed order: the split depends on the seed only
        members = groups[label]
        take = min(max(1, round(fraction * len(members))), len(members) - 1)
        is_val[rng.permutation(members)[:take]] = True
    if not is_val.any():
        raise UserError(f"The training data {where(source)} has one example per class: "
                        "too few to split off a validation set; add data or give data.val.path.")
    return full[~is_val], full[is_val]
