"""Duplicates within and across splits: exact (after normalising case and whitespace) and near
(word-shingle Jaccard over MinHash LSH candidates). A test example that also sits in training is
leakage: it inflates test scores and makes a data-efficiency curve measure memory."""

from __future__ import annotations

from itertools import combinations

import pandas as pd
from datasketch import MinHash, MinHashLSH

EXACT_COLUMNS = ["group", "split", "row", "text", "label", "conflict"]
NEAR_COLUMNS = ["split_a", "row_a", "split_b", "row_b", "jaccard", "text_a", "text_b"]
ORDER = ("train", "val", "test")  # leakage counts a later split's examples found in an earlier one


def normalise(text: str) -> str:
    return " ".join(str(text).lower().split())


def example_keys(table: pd.DataFrame) -> pd.Series:
    """One normalised string per example (a sentence pair counts as one example)."""
    keys = table["text"].map(normalise)
    return keys + " [SEP] " + table["pair"].map(normalise) if "pair" in table else keys


def every_example(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """split, row (in its source), key, text, label of every example of every split."""
    frames = [pd.DataFrame({"split": split, "row": table.index, "key": example_keys(table).to_numpy(),
                            "text": table["text"].to_numpy(), "label": table["label"].to_numpy()})
              for split, table in tables.items()]
    return pd.concat(frames, ignore_index=True)


def exact_duplicates(examples: pd.DataFrame) -> pd.DataFrame:
    """Every example whose normalised text another example shares: group, split, row, text, label;
    `conflict` marks groups whose copies carry different labels."""
    shared = examples[examples.duplicated("key", keep=False)].copy()
    shared["group"] = shared.groupby("key", sort=False).ngroup()
    shared["conflict"] = shared.groupby("group")["label"].transform("nunique") > 1
    return shared.sort_values(["group", "split", "row"])[EXACT_COLUMNS]


def leaked_rows(examples: pd.DataFrame, split: str, earlier: str) -> set:
    """The rows of `split` that have an exact copy in `earlier` (e.g. test in train)."""
    keys = set(examples.loc[examples["split"] == earlier, "key"])
    mine = examples[examples["split"] == split]
    return set(mine.loc[mine["key"].isin(keys), "row"])


def shingles(key: str, size: int) -> set[str]:
    words = key.split()
    if len(words) <= size:
        return {key}
    return {" ".join(words[i:i + size]) for i in range(len(words) - size + 1)}


def near_duplicates(examples: pd.DataFrame, threshold: float = 0.7, shingle: int = 2,
                    num_perm: int = 128) -> pd.DataFrame:
    """Pairs of examples with different normalised texts whose word-shingle sets have a Jaccard
    similarity of at least `threshold`: MinHash LSH proposes, the exact Jaccard decides."""
    sets = [shingles(key, shingle) for key in examples["key"]]
    hashes = MinHash.bulk([[s.encode() for s in group] for group in sets], num_perm=num_perm, seed=1)
    index = MinHashLSH(threshold=threshold, num_perm=num_perm)
    for position, minhash in enumerate(hashes):
        index.insert(position, minhash)
    pairs = set()
    for position, minhash in enumerate(hashes):
        pairs.update((min(position, other), max(position, other)) for other in index.query(minhash)
                     if other != position)
    rows = []
    for a, b in sorted(pairs):
        if examples.at[a, "key"] == examples.at[b, "key"]:
            continue  # exact copies are listed as such
        jaccard = len(sets[a] & sets[b]) / len(sets[a] | sets[b])
        if jaccard >= threshold:
            rows.append({"split_a": examples.at[a, "split"], "row_a": examples.at[a, "row"],
                         "split_b": examples.at[b, "split"], "row_b": examples.at[b, "row"],
                         "jaccard": round(jaccard, 3), "text_a": examples.at[a, "text"],
                         "text_b": examples.at[b, "text"]})
    return pd.DataFrame(rows, columns=NEAR_COLUMNS)


def near_leaked_rows(near: pd.DataFrame, split: str, earlier: str) -> set:
    """The rows of `split` that have a near copy in `earlier`."""
    forward = near[(near["split_a"] == earlier) & (near["split_b"] == split)]["row_b"]
    backward = near[(near["split_b"] == earlier) & (near["split_a"] == split)]["row_a"]
    return set(forward) | set(backward)


def split_pairs(splits) -> list[tuple[str, str]]:
    """(later, earlier) for every two splits present, in train < val < test order."""
    present = [split for split in ORDER if split in splits]
    return [(later, earlier) for earlier, later in combinations(present, 2)]
