"""A user's own code, named by `_target_` on the command line like dataeff's own."""

from __future__ import annotations

import pytorch_lightning as pl

from dataeff.data.labelled import LabelledTextDataModule
from dataeff.data.multimodal import ImageTextDataModule


class ReviewData(LabelledTextDataModule):
    """dataeff's labelled text with one more thing to tag the run with: where the reviews came from."""

    def __init__(self, *args, origin: str = "unknown", **kwargs):
        super().__init__(*args, **kwargs)
        self.origin = origin

    def run_tags(self) -> dict:
        return {**super().run_tags(), "data.origin": self.origin}


class PlainDataModule(pl.LightningDataModule):
    """A LightningDataModule that is none of dataeff's: it does not say what a job asks of its data."""

    def __init__(self, **settings):
        super().__init__()


class MyImages(ImageTextDataModule):
    """Image-text data of one's own: labelled, but with images, so not what task=classify trains on."""


class PlainTask(pl.LightningModule):
    """A LightningModule that is no dataeff task (no optimizer from the task's settings, no checkpoint
    a job can resume)."""

    def __init__(self, net, tokenizer, **settings):
        super().__init__()


class CsvRows:
    """Rows from somewhere, but no `dataeff.data.sources.Source`."""

    def __init__(self, path: str = "", format: str | None = None, encoding: str = "utf-8"):
        self.path = path


class Shout:
    """A text step that is a plain callable, not a `TextAugmenter`."""

    def __call__(self, text, rng, copy=0):
        return text.upper()
