"""Where a cell's spread comes from: which examples were labelled (`data.data_seed`, the pairing
key) or how training went on one subset (`seed`: initial weights, masking, batch order,
augmentation draws). Only a study that sweeps both axes can tell them apart."""

from __future__ import annotations

import numpy as np
import pandas as pd

PAIR, SEED = "pair", "seed"  # the study table's columns: labelled subset, training seed
SPREAD_COLUMNS = ["condition", "budget", "subsets", "seeds", "sd_subsets", "sd_seeds"]


def crossed(table: pd.DataFrame) -> bool:
    """True when some labelled subset was trained with more than one training seed."""
    if PAIR not in table or SEED not in table:
        return False
    runs = table.dropna(subset=[PAIR, SEED])
    return bool((runs.groupby(["condition", "budget", PAIR])[SEED].nunique() > 1).any())


def spread_by_source(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per condition x budget: the sample std of the subset means (each averaged over its training
    seeds) and the pooled std between training seeds on one subset. Columns: SPREAD_COLUMNS
    (`seeds`: training seeds per subset, the smallest count)."""
    runs = table.dropna(subset=[PAIR, SEED, metric])
    rows = []
    for (condition, budget), cell in runs.groupby(["condition", "budget"]):
        subsets = cell.groupby(PAIR)[metric]
        rows.append({"condition": condition, "budget": budget, "subsets": subsets.ngroups,
                     "seeds": int(subsets.size().min()), "sd_subsets": _std(subsets.mean()),
                     "sd_seeds": pooled_std(subsets)})
    return pd.DataFrame(rows, columns=SPREAD_COLUMNS)


def pooled_std(groups) -> float:
    """sqrt of the within-group variance pooled over groups (each weighted by its n - 1)."""
    squares = sum(float(((g - g.mean()) ** 2).sum()) for _, g in groups)
    freedom = sum(len(g) - 1 for _, g in groups)
    return float(np.sqrt(squares / freedom)) if freedom > 0 else float("nan")


def _std(values: pd.Series) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else float("nan")


def spread_summary(spread: pd.DataFrame) -> str:
    """One sentence: in how many cells the labelled subset moves the score more than training."""
    both = spread.dropna(subset=["sd_subsets", "sd_seeds"])
    if both.empty:
        return "No cell has both two subsets and two training seeds on one subset."
    subset_wins = int((both["sd_subsets"] > both["sd_seeds"]).sum())
    return (f"Which examples were labelled moves the score more than training randomness in "
            f"{subset_wins} of {len(both)} cells (median std {both['sd_subsets'].median():.4f} between "
            f"subsets, {both['sd_seeds'].median():.4f} between training seeds on one subset).")
