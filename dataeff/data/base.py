"""What a job asks of its data beside Lightning's loaders: every `data=` preset builds a subclass.

The job trains a tokenizer on `train_texts()` (or loads one) and hands it over with
`set_tokenizer()` before Lightning prepares and sets up the data; it then logs what the data says of
itself. The defaults suit text without labels, augmentation or a test split (MLM pretraining).
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from dataeff.models.shape import DataShape


class DataModule(pl.LightningDataModule):
    name = "data"  # the data set's name, in tags and messages
    tokenizer = None

    def shape(self) -> DataShape:
        """What the network is built for (its classes, its image size): `task.net` gets this."""
        return DataShape(self.name)

    @property
    def has_text(self) -> bool:
        """False for images alone: the job makes or loads no tokenizer."""
        return True

    @property
    def has_test(self) -> bool:
        """Whether the job tests its best checkpoint after training."""
        return False

    def train_texts(self) -> list[str]:
        """The training text, to train a new tokenizer on."""
        raise NotImplementedError

    def set_tokenizer(self, tokenizer) -> None:
        self.tokenizer = tokenizer

    def load_reports(self) -> dict:
        """For each model the data itself loads (an MLM augmenter): its source and the keys loaded."""
        return {}

    def run_tags(self) -> dict:
        """What to tag the run with: the label budget drawn, the augmentation."""
        return {}

    def augmentation_samples(self) -> str | None:
        """Markdown: training text beside its augmentations."""
        return None

    def augmentation_grid(self) -> torch.Tensor | None:
        """uint8 (3, H, W): training images beside their augmentations."""
        return None
