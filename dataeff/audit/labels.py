"""Likely label errors: out-of-fold predicted probabilities of a fast model fed to cleanlab's
confident learning (`find_label_issues`). The model is logistic regression over k folds, on TF-IDF
word and bigram features by default, or on a pretrained encoder's sentence vectors
(`audit.labels.encoder`: a weak model's own mistakes look like label errors, so a better one
flags fewer correct labels)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from cleanlab.filter import find_label_issues
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline

from dataeff.audit.duplicates import example_keys
from dataeff.models.vectors import Texts, encoder_vectors

ISSUE_COLUMNS = ["row", "text", "given", "suggested", "p_given", "p_suggested"]


def out_of_fold_probs(features, labels: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Each example's class probabilities from a model that never saw it (k-fold): `features` are
    texts (TF-IDF) or a matrix of sentence vectors."""
    smallest = int(np.bincount(labels).min())
    classifier = LogisticRegression(max_iter=2000)
    model = (make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), classifier)
             if isinstance(features, list) else classifier)
    cv = StratifiedKFold(n_splits=max(2, min(folds, smallest)), shuffle=True, random_state=seed)
    return cross_val_predict(model, features, labels, cv=cv, method="predict_proba")


def features_of(table: pd.DataFrame, encoder: str | None, max_length: int):
    if encoder is None:
        return example_keys(table).tolist()
    texts = Texts(table["text"].tolist(), table["pair"].tolist() if "pair" in table else None)
    return encoder_vectors(encoder, texts, max_length, setting="audit.labels.encoder").numpy()


def label_issues(table: pd.DataFrame, folds: int = 5, seed: int = 0, encoder: str | None = None,
                 max_length: int = 128) -> pd.DataFrame:
    """The examples whose given label the out-of-fold model most doubts, worst first: row, text,
    given label, suggested label, and the model's probability of each."""
    names = sorted(set(table["label"]))
    labels = table["label"].map({name: i for i, name in enumerate(names)}).to_numpy()
    if len(names) < 2 or np.bincount(labels).min() < 2:
        return pd.DataFrame(columns=ISSUE_COLUMNS)  # nothing to cross-validate
    probs = out_of_fold_probs(features_of(table, encoder, max_length), labels, folds, seed).astype(float)
    # n_jobs=1: no process pool (its workers outlive a failing app and print tracebacks); fast anyway
    flagged = find_label_issues(labels, probs, return_indices_ranked_by="self_confidence", n_jobs=1)
    suggested = probs[flagged].argmax(1)
    return pd.DataFrame({"row": table.index[flagged], "text": table["text"].iloc[flagged].to_numpy(),
                         "given": [names[i] for i in labels[flagged]],
                         "suggested": [names[i] for i in suggested],
                         "p_given": probs[flagged, labels[flagged]].round(4),
                         "p_suggested": probs[flagged, suggested].round(4)}, columns=ISSUE_COLUMNS)
