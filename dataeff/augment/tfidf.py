"""TF-IDF word replacement (UDA, Xie et al. 2020): swap uninformative words for other
uninformative words, keep the keywords. Needs nothing but the training corpus.

A word's chance of being replaced grows as its TF-IDF score in the sentence falls (scaled so
that on average `p` of the words change); replacements are drawn from the corpus vocabulary
with probability proportional to (max IDF - IDF), i.e. favouring common, low-information words.
"""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np

from dataeff.augment.base import TextAugmenter
from dataeff.errors import UserError


class TfidfReplacement(TextAugmenter):
    def __init__(self, p: float = 0.3):
        if not 0 < p <= 1:
            raise UserError(f"augment.text.tfidf.p={p} must be in (0, 1]: the share of words to replace.")
        self.p = p
        self.idf: dict[str, float] = {}
        self.vocabulary: list[str] = []
        self.cumulative: np.ndarray | None = None

    def fit(self, texts: list[str]) -> TfidfReplacement:  # chainable: TfidfReplacement().fit(corpus)
        documents = Counter(word for text in texts for word in set(text.split()))
        self.idf = {word: math.log(len(texts) / count) for word, count in documents.items()}
        self.vocabulary = sorted(self.idf)
        top = max(self.idf.values(), default=0.0)
        weights = np.array([top - self.idf[w] for w in self.vocabulary]) + 1e-6
        self.cumulative = np.cumsum(weights / weights.sum())
        return self

    def __call__(self, text: str, rng: random.Random, copy: int = 0) -> str:
        if self.cumulative is None:
            raise RuntimeError("TfidfReplacement.fit(train_texts) must run before augmenting")
        words = text.split()
        if not words:
            return text
        counts = Counter(words)
        scores = np.array([counts[w] / len(words) * self.idf.get(w, 0.0) for w in words])
        room = scores.max() - scores
        probs = np.full(len(words), self.p) if room.sum() == 0 else np.minimum(
            1.0, room / room.sum() * self.p * len(words))
        return " ".join(self._draw(rng) if rng.random() < prob else word for word, prob in zip(words, probs))

    def _draw(self, rng: random.Random) -> str:
        index = int(np.searchsorted(self.cumulative, rng.random()))
        return self.vocabulary[min(index, len(self.vocabulary) - 1)]
