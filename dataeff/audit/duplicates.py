"""Duplicates within and across splits: exact (after normalising case and whitespace) and near
(word-shingle Jaccard over MinHash LSH candidates). A test example that also sits in training is
leakage: it inflates test scores and makes a data-efficiency curve measure memory."""

from __future__ import annotations

from itertools import combinations

import pandas as pd
from datasketch import MinHash, MinHashLSH

EXACT_COLUMNS = ["group", "split", "row", "text", "label", "conflict"]
NEAR_COLUMNS = ["split_a", "row_a", "split_b", "row_b", "jaccard", "text_a", "text_b", "copies"]
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
    similarity of at least `threshold`: MinHash LSH proposes, the exact Jaccard decides. Computed
    over distinct texts, one line per pair of texts and pair of splits (its first rows, and in
    `copies` the number of example pairs it stands for): a templated data set (easy-VQA: 48,248
    questions, 107 distinct) has millions of such pairs, and every copy of a text would meet
    every copy of its neighbour in the LSH query."""
    distinct = examples.drop_duplicates("key")["key"].tolist()
    by_key = {key: rows for key, rows in examples.groupby("key", sort=False)}
    lines = []
    for key_a, key_b, jaccard in near_text_pairs(distinct, threshold, shingle, num_perm):
        for split_a, rows_a in by_key[key_a].groupby("split", sort=False):
            for split_b, rows_b in by_key[key_b].groupby("split", sort=False):
                first_a, first_b = rows_a.iloc[0], rows_b.iloc[0]
                lines.append({"split_a": split_a, "row_a": first_a["row"], "split_b": split_b,
                              "row_b": first_b["row"], "jaccard": jaccard, "text_a": first_a["text"],
                              "text_b": first_b["text"], "copies": len(rows_a) * len(rows_b)})
    return pd.DataFrame(lines, columns=NEAR_COLUMNS)


def near_text_pairs(keys: list[str], threshold: float, shingle: int, num_perm: int):
    """(key a, key b, Jaccard) for distinct keys at least `threshold` alike, a before b in `keys`."""
    sets = [shingles(key, shingle) for key in keys]
    hashes = MinHash.bulk([[s.encode() for s in group] for group in sets], num_perm=num_perm, seed=1)
    index = MinHashLSH(threshold=threshold, num_perm=num_perm)
    for position, minhash in enumerate(hashes):
        index.insert(position, minhash)
    candidates = {(min(position, other), max(position, other)) for position, minhash in enumerate(hashes)
                  for other in index.query(minhash) if other != position}
    for a, b in sorted(candidates):
        jaccard = len(sets[a] & sets[b]) / len(sets[a] | sets[b])
        if jaccard >= threshold:
            yield keys[a], keys[b], round(jaccard, 3)


def near_leaked_rows(near: pd.DataFrame, split: str, earlier: str,
                     examples: pd.DataFrame | None = None) -> set:
    """The rows of `split` that have a near copy in `earlier`. `near` lists pairs of rows (image
    copies) or, with `examples`, pairs of texts by their first rows: every copy of a text counts."""
    forward = near[(near["split_a"] == earlier) & (near["split_b"] == split)]["row_b"]
    backward = near[(near["split_b"] == earlier) & (near["split_a"] == split)]["row_a"]
    rows = set(forward) | set(backward)
    if examples is None:
        return rows
    mine = examples[examples["split"] == split]
    keys = set(mine.loc[mine["row"].isin(rows), "key"])
    return set(mine.loc[mine["key"].isin(keys), "row"])


def split_pairs(splits) -> list[tuple[str, str]]:
    """(later, earlier) for every two splits present, in train < val < test order."""
    present = [split for split in ORDER if split in splits]
    return [(later, earlier) for earlier, later in combinations(present, 2)]
