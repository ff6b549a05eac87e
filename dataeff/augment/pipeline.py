"""`Augmentation`: the configured text augmenters and image pipeline, applied online (fresh,
seeded by (seed, epoch, example) every epoch) or offline (n copies per sentence, made once and
cached, as in the EDA paper). Only the training split is ever augmented; labels never change."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pandas as pd

from dataeff.augment.base import TextAugmenter
from dataeff.augment.image import SeededTransform, image_pipeline
from dataeff.errors import UserError, require_subclass

MODES = ("online", "offline")


def text_step(name: str, step) -> TextAugmenter:
    require_subclass(step, TextAugmenter, f"augment.text.{name}", "text augmenter",
                     "it is called as step(text, rng, copy) and may fit(texts) on the training text first.")
    return step


class Augmentation:
    def __init__(self, name: str = "custom", text=None, image=None, mode: str = "online", copies: int = 1,
                 keep_original: bool = True, seed: int = 0, samples: int = 20, cache_dir: str | None = None):
        if mode not in MODES:
            raise UserError(f"augment.mode={mode!r} is not one of {MODES}.")
        if not isinstance(copies, int) or copies < 1:
            raise UserError(f"augment.copies={copies!r}: make at least one augmented copy per example "
                            "(augment.copies=1), or use augment=none for no augmentation.")
        self.name, self.mode, self.copies, self.keep_original = name, mode, copies, keep_original
        self.seed, self.samples = seed, samples
        self.named_steps = {name: text_step(name, step) for name, step in dict(text or {}).items()
                            if step is not None}
        self.text_steps = list(self.named_steps.values())
        self.image_transform = image_pipeline(image)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._fitted = False
        self.settings = {"name": name, "mode": mode, "copies": copies, "keep_original": keep_original,
                         "seed": seed, "text": [type(step).__name__ for step in self.text_steps],
                         "image": repr(self.image_transform)}

    @property
    def active(self) -> bool:
        return bool(self.text_steps or self.image_transform)

    def load_reports(self) -> dict:
        """What each text step that loads a model (the MLM augmenter) loaded, for init_report.json."""
        return {f"augment.{name}": step.load_report for name, step in self.named_steps.items()
                if step.load_report is not None}

    def fit(self, texts: list[str]) -> None:
        """Corpus statistics some augmenters need (TF-IDF), from the training text; computed once."""
        if self._fitted:
            return
        self._fitted = True
        for step in self.text_steps:
            step.fit(texts)

    def text(self, text: str, rng: random.Random, copy: int = 0) -> str:
        for step in self.text_steps:
            text = step(text, rng, copy)
        return text

    def rng(self, epoch: int, index: int, copy: int = 0) -> random.Random:
        return random.Random(f"{self.seed}-{epoch}-{index}-{copy}")

    def image(self) -> SeededTransform | None:
        return SeededTransform(self.image_transform, self.seed) if self.image_transform else None

    def expand(self, table: pd.DataFrame) -> pd.DataFrame:
        """Offline: the original rows (if kept) and `copies` augmented copies of each, cached on disk."""
        cached = self._cache_path(table)
        if cached is not None and cached.exists():
            return pd.read_parquet(cached)
        rows = [table] if self.keep_original else []
        for copy in range(self.copies):
            augmented = table.copy()
            for column in [c for c in ("text", "pair") if c in table]:
                augmented[column] = [self.text(value, self.rng(0, int(index), copy), copy)
                                     for index, value in zip(table.index, table[column])]
            rows.append(augmented)
        expanded = pd.concat(rows)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            expanded.to_parquet(cached)
        return expanded

    def _cache_path(self, table: pd.DataFrame) -> Path | None:
        if self.cache_dir is None:
            return None
        key = hashlib.sha256(json.dumps([self.settings, [repr(vars(s)) for s in self.text_steps],
                                         table.to_json()], default=str).encode()).hexdigest()[:16]
        return self.cache_dir / "augmented" / f"{key}.parquet"

    def text_samples(self, table: pd.DataFrame) -> str:
        """Markdown: a sample of training sentences beside their augmented versions."""
        lines = [f"# Augmentation samples ({self.name}, {self.mode})", "",
                 "| label | original | augmented |", "|---|---|---|"]
        for index, row in table.head(self.samples).iterrows():
            for copy in range(max(2, min(self.copies, 3))):  # online: copy = epoch
                new = self.text(row["text"], self.rng(0, int(index), copy), copy)
                lines.append(f"| {row['label']} | {_cell(row['text'])} | {_cell(new)} |")
        return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def describe(augmentation: Augmentation | None) -> dict:
    settings = augmentation.settings if augmentation else {"name": "none"}
    return {f"augment.{key}": value for key, value in settings.items()}
