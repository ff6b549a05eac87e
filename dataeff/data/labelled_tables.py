"""A labelled data set's tables under a label budget: what every labelled data module reads.

Everything is read once (`dataeff.data.tables`). Without a validation source, validation is split
off the training table (class-stratified, by `split_seed`) before the budget is drawn, so no budget
trains on a validation example and the validation set stays put when the budget or `data_seed` changes.
Budgets come from `draw_subset`, so they are nested across fractions for one seed. Table rows keep
their row number in the source as the pandas index, so subsets can be compared and hashed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from dataeff.data.noise import flip_labels
from dataeff.data.rows import label_order
from dataeff.data.sampling import draw_subset, subset_hash
from dataeff.data.sources import Source
from dataeff.data.tables import read_columns, refuse_unknown_labels, split_validation
from dataeff.errors import UserError

VAL_SIZES = ("full", "matched")
BAD_ROWS = ("error", "skip")
RowFilter = Callable[[str, pd.DataFrame], pd.DataFrame]  # (split, table as read) -> the rows kept


class LabelledTables:
    """`train` (the budget's subset), `val` and, if given, `test`, from sources with a `table()`
    method: columns text, [pair], label and any other `columns` (an image's path). `on_read` sees
    each split as read and returns the rows it keeps (a data module that decodes images drops
    those it cannot read, before the budget is drawn)."""

    def __init__(self, sources: dict[str, Source | None], columns: dict[str, str | None],
                 val_fraction: float = 0.1, split_seed: int = 0, fraction: float | None = 1.0,
                 shots: int | None = None, data_seed: int = 0, val_size: str = "matched",
                 on_bad_row: str = "error", label_noise: float = 0.0, noise_seed: int = 0, labels=None,
                 on_read: RowFilter | None = None):
        if on_bad_row not in BAD_ROWS:
            raise UserError(f"data.on_bad_row={on_bad_row!r} is not one of {BAD_ROWS}: error stops at the "
                            "first row without a text or a label, skip drops such rows and counts them.")
        if val_size not in VAL_SIZES:
            raise UserError(f"data.val_size={val_size!r} is not one of {VAL_SIZES}; use data.val_size=full "
                            "(the whole dev set) or data.val_size=matched (about as large as the train "
                            "subset).")
        if sources["train"] is None:
            raise UserError("data.train names no training data: set data.train.path=<file>.")
        self.sources, self.columns = sources, columns
        self.val_fraction, self.split_seed, self.val_size = val_fraction, split_seed, val_size
        self.fraction, self.shots, self.data_seed = fraction, shots, data_seed
        self.on_bad_row, self.skipped_rows = on_bad_row, 0
        self.label_noise, self.noise_seed = label_noise, noise_seed
        self.known_labels = [str(label) for label in labels or []]  # classes training may lack
        self.flipped_rows: set[int] = set()  # training rows whose label data.label_noise flipped
        self.on_read = on_read
        self.as_read: dict[str, pd.DataFrame] = {}  # each source as read, before splits and budgets
        self._labels: list[str] = []
        self._tables: dict[str, pd.DataFrame] | None = None

    def tables(self) -> dict[str, pd.DataFrame]:
        if self._tables is None:
            self._tables = self._build()
        return self._tables

    @property
    def unlabelled(self) -> bool:
        """`label_column=null`: the examples alone (task=mim pretrains on images without labels)."""
        return self.columns["label"] is None

    def _build(self) -> dict[str, pd.DataFrame]:
        full = self.as_read["train"] = self._read("train")
        self._labels = sorted(set(full["label"]) | set(self.known_labels), key=label_order)
        if len(self._labels) < 2 and not self.unlabelled:
            raise UserError(f"The training data {self.sources['train']} has one class in column "
                            f"{self.columns['label']!r} ({self._labels[0]!r} on all {len(full)} rows): a "
                            "classifier needs at least two. Check data.label_column (and data.on_bad_row="
                            "skip, which may have dropped the other classes' rows), or the file.")
        if self.sources["val"] is None:
            pool, val = split_validation(full, self.val_fraction, self.split_seed, self.sources["train"])
        else:
            pool, val = full, self._read("val")
            self.as_read["val"] = val
        tables = {"train": pool.iloc[self._draw_budget(pool)], "val": val}
        if self.has_test:
            tables["test"] = self.as_read["test"] = self._read("test")
        if self.val_size == "matched":
            keep = draw_subset(list(val["label"]), fraction=min(1.0, len(tables["train"]) / len(val)),
                               seed=self.data_seed)
            tables["val"] = val.iloc[keep]
        return tables

    def source_table(self, split: str) -> pd.DataFrame:
        """One split as read (text, [pair], label; index: the row in the source), before any
        validation split or budget, its labels unchecked and `on_read` not applied: what an
        active-learning loop queries and what the data audit reads."""
        return self._read(split, check_labels=False, keep=False)

    def _read(self, split: str, check_labels: bool = True, keep: bool = True) -> pd.DataFrame:
        """The used columns as stripped strings, renamed text/pair/label (see `read_columns`)."""
        source = self.sources[split]
        table, skipped = read_columns(source, self.columns, split, self.on_bad_row)
        self.skipped_rows += skipped
        if self.unlabelled:  # one class for the splits and budgets, which then draw at random
            table = table.assign(label="")
        if split != "train" and check_labels:
            refuse_unknown_labels(table, self._labels, split, source)
        if split == "train" and self.label_noise:
            table, self.flipped_rows = flip_labels(table, self.label_noise, self.noise_seed)
        return self.on_read(split, table) if keep and self.on_read is not None else table

    def _draw_budget(self, pool: pd.DataFrame) -> np.ndarray:
        fraction = self.fraction if self.shots is None else None  # shots, when set, win
        return draw_subset(list(pool["label"]), fraction=fraction, shots=self.shots, seed=self.data_seed)

    @property
    def label_names(self) -> list[str]:
        self.tables()
        return list(self._labels)

    @property
    def has_test(self) -> bool:
        return self.sources["test"] is not None

    def source_of(self, split: str) -> str:
        """The table a split's rows come from: validation is split off train unless it has a file."""
        return "train" if split == "val" and "val" not in self.as_read else split

    def budget(self) -> dict:
        """What the run trains and validates on, to log with it."""
        tables = self.tables()
        return {"data.train_size": len(tables["train"]), "data.val_size": len(tables["val"]),
                # every label the run saw
                "data.labels": 0 if self.unlabelled else len(tables["train"]) + len(tables["val"]),
                "data.test_size": len(tables.get("test", ())),
                "data.num_classes": 0 if self.unlabelled else len(self._labels),
                "data.skipped_rows": self.skipped_rows,
                **({"data.flipped_labels": len(self.flipped_rows)} if self.label_noise else {}),
                "data.subset_hash": subset_hash(tables["train"].index.to_numpy())}

    def train_texts(self) -> list[str]:
        """Every text of the whole training table (labelled or not), e.g. to train a tokenizer."""
        self.tables()
        full = self.as_read["train"]
        return list(full["text"]) + (list(full["pair"]) if "pair" in full else [])
