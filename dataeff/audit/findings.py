"""What an audit finds in a labelled data set's splits, computed once: duplicates and leakage,
likely label errors, class balance, lengths and labels that only one split has."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from dataeff.audit.duplicates import (
    EXACT_COLUMNS,
    NEAR_COLUMNS,
    every_example,
    exact_duplicates,
    leaked_rows,
    near_duplicates,
    near_leaked_rows,
    split_pairs,
)
from dataeff.audit.images import image_copies, image_sizes, read_images
from dataeff.audit.labels import ISSUE_COLUMNS, label_issues

LEAK_COLUMNS = ["split", "earlier", "exact", "near", "size", "share"]


@dataclass
class Findings:
    sizes: dict[str, int]
    exact: pd.DataFrame        # every example that has an exact copy (group, split, row, ...)
    near: pd.DataFrame         # pairs of near texts (split_a, row_a, ..., jaccard, copies)
    leaks: pd.DataFrame        # per (split, earlier split): exact and near copies, and their share
    label_issues: pd.DataFrame  # training rows whose label the out-of-fold model doubts
    balance: pd.DataFrame      # label x split counts
    lengths: pd.DataFrame      # words per example, per split: min, median, p95, max, over max_length
    only_in_one: dict[str, list[str]]  # split -> labels no other split has
    # images that cannot be read; pairs of examples whose images are (nearly) the same picture; per
    # split the number of images and their width and height range
    unreadable: pd.DataFrame = field(default_factory=pd.DataFrame)
    image_copies: pd.DataFrame = field(default_factory=pd.DataFrame)
    image_sizes: pd.DataFrame = field(default_factory=pd.DataFrame)

    def metrics(self) -> dict[str, float]:
        values = {f"audit/{row.split}_in_{row.earlier}": row.exact for row in self.leaks.itertuples()}
        values |= {f"audit/{row.split}_near_{row.earlier}": row.near for row in self.leaks.itertuples()}
        values |= {"audit/duplicate_examples": len(self.exact),
                   "audit/label_conflicts": int(self.exact.groupby("group")["conflict"].first().sum())
                   if len(self.exact) else 0,
                   "audit/near_pairs": int(self.near["copies"].sum()),
                   "audit/label_issues": len(self.label_issues),
                   "audit/labels_in_one_split": sum(map(len, self.only_in_one.values()))}
        if len(self.image_sizes):
            copies = self.image_copies
            values |= {"audit/unreadable_images": len(self.unreadable), "audit/image_copies": len(copies),
                       "audit/test_image_in_train": len(near_leaked_rows(copies, "test", "train"))}
        return {key: float(value) for key, value in values.items()}


def audit(tables: dict[str, pd.DataFrame], near_threshold: float = 0.7, shingle: int = 2,
          folds: int = 5, seed: int = 0, max_length: int = 128, encoder: str | None = None,
          image_distance: int = 4) -> Findings:
    """Everything the audit looks at; the texts when the data has text, the images when it has them."""
    findings = text_findings(tables, near_threshold, shingle, folds, seed, max_length, encoder) if (
        "text" in tables["train"]) else no_text(tables)
    if "image" in tables["train"]:
        images, findings.unreadable = read_images(tables)
        findings.image_copies = image_copies(images, image_distance)
        findings.image_sizes = image_sizes(images)
    return findings


def no_text(tables: dict[str, pd.DataFrame]) -> Findings:
    """Images only: the text findings are empty."""
    return Findings({split: len(table) for split, table in tables.items()},
                    pd.DataFrame(columns=EXACT_COLUMNS), pd.DataFrame(columns=NEAR_COLUMNS),
                    pd.DataFrame(columns=LEAK_COLUMNS), pd.DataFrame(columns=ISSUE_COLUMNS),
                    balance(tables), pd.DataFrame(), labels_in_one_split(tables))


def text_findings(tables, near_threshold, shingle, folds, seed, max_length, encoder) -> Findings:
    examples = every_example(tables)
    exact, near = exact_duplicates(examples), near_duplicates(examples, near_threshold, shingle)
    leaks = pd.DataFrame([leak_counts(examples, near, split, earlier, len(tables[split]))
                          for split, earlier in split_pairs(tables)], columns=LEAK_COLUMNS)
    return Findings({split: len(table) for split, table in tables.items()}, exact, near, leaks,
                    label_issues(tables["train"], folds, seed, encoder, max_length), balance(tables),
                    lengths(tables, max_length), labels_in_one_split(tables))


def leak_counts(examples: pd.DataFrame, near: pd.DataFrame, split: str, earlier: str, size: int) -> dict:
    """How many of `split` have an exact copy in `earlier`, how many only a near one, and the share
    of `split` with either (each example counted once)."""
    exact, close = leaked_rows(examples, split, earlier), near_leaked_rows(near, split, earlier, examples)
    return {"split": split, "earlier": earlier, "exact": len(exact), "near": len(close - exact), "size": size,
            "share": round(len(exact | close) / max(size, 1), 4)}


def balance(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    counts = pd.DataFrame({split: table["label"].value_counts() for split, table in tables.items()})
    return counts.fillna(0).astype(int).rename_axis("label").sort_index()


def lengths(tables: dict[str, pd.DataFrame], max_length: int) -> pd.DataFrame:
    """Words per example (a lower bound on tokens: `over_max_length` rows are surely truncated)."""
    rows = []
    for split, table in tables.items():
        words = table["text"].str.split().str.len() + (table["pair"].str.split().str.len()
                                                       if "pair" in table else 0)
        rows.append({"split": split, "min": int(words.min()), "median": float(words.median()),
                     "p95": float(words.quantile(0.95)), "max": int(words.max()),
                     "over_max_length": int((words > max_length).sum())})
    return pd.DataFrame(rows)


def labels_in_one_split(tables: dict[str, pd.DataFrame]) -> dict[str, list[str]]:
    if len(tables) < 2:
        return {}
    seen = {split: set(table["label"]) for split, table in tables.items()}
    only = {}
    for split, labels in seen.items():
        others = set().union(*(seen[other] for other in seen if other != split))
        if labels - others:
            only[split] = sorted(labels - others)
    return only
