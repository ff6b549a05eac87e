"""What every text augmenter of `augment.text` is: called once per text and copy with a seeded RNG
(so an epoch's augmentation is the same in any worker); it may first learn corpus statistics from
the training text (`fit`: TF-IDF's word weights), and say which model it loaded (`load_report`:
the MLM's), which the job logs beside its own."""

from __future__ import annotations

import random


class TextAugmenter:
    load_report: dict | None = None  # {source, loaded, missing, unexpected} when it loads a model

    def fit(self, texts: list[str]) -> None:  # noqa: B027  (most augmenters learn nothing)
        """Learn from the training text before the first call; most augmenters need nothing."""

    def __call__(self, text: str, rng: random.Random, copy: int = 0) -> str:
        raise NotImplementedError
