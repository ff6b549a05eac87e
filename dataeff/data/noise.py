"""Label noise on purpose: a seeded share of training labels flipped to another class, to measure
how training and the data audit cope with wrong labels (`data.label_noise`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dataeff.data.rows import label_order
from dataeff.errors import UserError


def flip_labels(table: pd.DataFrame, share: float, seed: int) -> tuple[pd.DataFrame, set[int]]:
    """The table with round(share x rows) labels, drawn at random, each set to another class drawn
    at random; and the rows (index values) that were flipped."""
    if not 0 <= share < 1:
        raise UserError(f"data.label_noise={share} is not a share of labels in [0, 1); e.g. 0.1 flips 10%.")
    classes = sorted(set(table["label"]), key=label_order)
    if share == 0 or len(classes) < 2:
        return table, set()
    rng = np.random.default_rng(seed)
    positions = rng.choice(len(table), size=round(share * len(table)), replace=False)
    labels = table["label"].to_numpy(dtype=object).copy()
    for position in positions:
        others = [label for label in classes if label != labels[position]]
        labels[position] = others[rng.integers(len(others))]
    return table.assign(label=labels), {int(table.index[p]) for p in positions}
