"""The classical reference of a study: TF-IDF features (word n-grams and character n-grams, as a
text classification baseline is usually built) and a logistic regression, fit in seconds on the
same labelled subset as the transformers, its regularisation chosen on the same validation split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_union

from dataeff.errors import UserError


@dataclass
class Fitted:
    pipeline: Pipeline
    C: float  # the regularisation kept: the best validation accuracy (the strongest, on a tie)
    val_accuracy: float

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        """The label (as a string) of every row of a table like the ones it was fit on."""
        return self.pipeline.predict(texts(table))


class TfidfLogisticRegression:
    """`fit(train, val)` on tables with a text column (and a pair column, read as one text with it)
    and a label column; each C of `C` is fit on train and scored on val."""

    def __init__(self, word_ngrams=(1, 2), char_ngrams=(2, 5), sublinear_tf: bool = True,
                 C=(0.1, 1.0, 10.0, 100.0), max_iter: int = 1000):
        self.word_ngrams, self.char_ngrams = tuple(word_ngrams), tuple(char_ngrams)
        self.sublinear_tf, self.max_iter = sublinear_tf, max_iter
        grid = [C] if isinstance(C, (int, float)) else list(C)
        if not grid or not all(isinstance(c, (int, float)) and c > 0 for c in grid):
            raise UserError(f"task.classifier.C={grid}: the inverse regularisation strengths to try must be "
                            "positive numbers, e.g. task.classifier.C=[0.1,1,10].")
        self.grid = sorted(float(c) for c in grid)

    def pipeline(self, C: float) -> Pipeline:
        features = make_union(
            TfidfVectorizer(ngram_range=self.word_ngrams, sublinear_tf=self.sublinear_tf),
            TfidfVectorizer(analyzer="char_wb", ngram_range=self.char_ngrams, sublinear_tf=self.sublinear_tf))
        return Pipeline([("tfidf", features),
                         ("logreg", LogisticRegression(C=C, max_iter=self.max_iter))])

    def fit(self, train: pd.DataFrame, val: pd.DataFrame) -> Fitted:
        best = None
        for C in self.grid:
            pipeline = self.pipeline(C).fit(texts(train), train["label"].astype(str))
            fitted = Fitted(pipeline, C, 0.0)
            fitted.val_accuracy = float(np.mean(fitted.predict(val) == val["label"].astype(str)))
            if best is None or fitted.val_accuracy > best.val_accuracy:
                best = fitted
        return best


def texts(table: pd.DataFrame) -> list[str]:
    """A row's text, with its pair after it (sentence pairs: both sides' n-grams in one bag)."""
    if "pair" not in table:
        return list(table["text"].astype(str))
    return [f"{text} {pair}" for text, pair in zip(table["text"].astype(str), table["pair"].astype(str))]
