"""Likely label errors: out-of-fold predicted probabilities of a fast model (TF-IDF + logistic
regression, k folds) fed to cleanlab's confident learning (`find_label_issues`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from cleanlab.filter import find_label_issues
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline

from dataeff.audit.duplicates import example_keys


def out_of_fold_probs(texts: list[str], labels: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Each example's class probabilities from a model that never saw it (k-fold)."""
    smallest = int(np.bincount(labels).min())
    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                          LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(n_splits=max(2, min(folds, smallest)), shuffle=True, random_state=seed)
    return cross_val_predict(model, texts, labels, cv=cv, method="predict_proba")


def label_issues(table: pd.DataFrame, folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """The examples whose given label the out-of-fold model most doubts, worst first: row, text,
    given label, suggested label, and the model's probability of each."""
    names = sorted(set(table["label"]))
    labels = table["label"].map({name: i for i, name in enumerate(names)}).to_numpy()
    columns = ["row", "text", "given", "suggested", "p_given", "p_suggested"]
    if len(names) < 2 or np.bincount(labels).min() < 2:
        return pd.DataFrame(columns=columns)  # nothing to cross-validate
    probs = out_of_fold_probs(example_keys(table).tolist(), labels, folds, seed)
    flagged = find_label_issues(labels, probs, return_indices_ranked_by="self_confidence")
    suggested = probs[flagged].argmax(1)
    return pd.DataFrame({"row": table.index[flagged], "text": table["text"].iloc[flagged].to_numpy(),
                         "given": [names[i] for i in labels[flagged]],
                         "suggested": [names[i] for i in suggested],
                         "p_given": probs[flagged, labels[flagged]].round(4),
                         "p_suggested": probs[flagged, suggested].round(4)}, columns=columns)
