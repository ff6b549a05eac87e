"""Labelled image-text data (and image-only data): easy-VQA, a user's manifest, an image folder.

The tables, the validation split and the label budget are those of all labelled data
(`LabelledTables`), with one more column, `image`: a path, relative to `image_root` (by default the
manifest's folder).
Images are decoded once (see `ImageStore`); unreadable ones fail the run or, with
`on_bad_image=skip`, drop their rows before the budget is drawn.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from dataeff.data.examples import LabelledCollator, LabelledExamples
from dataeff.data.images import MAX_PIXELS, ImageStore, resolve
from dataeff.data.labelled import LabelledDataModule
from dataeff.data.loading import loader_settings
from dataeff.data.order import split_key
from dataeff.errors import UserError
from dataeff.models.shape import DataShape


class ImageTextExamples(Dataset):
    """Per example: token ids and types (None without text), a uint8 image and a label.
    `pixels` holds each distinct image once (shared by the splits); `image_index` points into it."""

    def __init__(self, text: LabelledExamples | None, pixels: torch.Tensor, image_index: torch.Tensor,
                 labels: torch.Tensor, transform=None):
        self.text, self.pixels, self.image_index = text, pixels, image_index
        self.labels, self.transform = labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key):
        epoch, index = split_key(key)
        image = self.pixels[self.image_index[index]]
        if self.transform is not None:
            image = self.transform(image, epoch, index)
        ids, types = (self.text.ids[index], self.text.types[index]) if self.text else (None, None)
        return ids, types, image, int(self.labels[index])

    def lengths(self) -> torch.Tensor | None:
        """Tokens per example; None for images alone, which all have the same size."""
        return self.text.lengths() if self.text else None


class ImageTextCollator:
    """Pads the text like `LabelledCollator`; stacks images as normalised float `pixel_values`."""

    def __init__(self, pad_id: int | None, mean, std):
        self.text = LabelledCollator(pad_id) if pad_id is not None else None
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def __call__(self, batch) -> dict[str, torch.Tensor]:
        ids, types, images, labels = zip(*batch)
        out = self.text(list(zip(ids, types, labels))) if self.text else {
            "labels": torch.tensor(labels, dtype=torch.long)}
        pixels = torch.stack(images).float().div_(255)
        out["pixel_values"] = (pixels - self.mean) / self.std
        return out


class ImageTextDataModule(LabelledDataModule):
    """Labelled data with an image per example and, unless `text_column=null`, a text."""

    def __init__(self, *args, image_column: str = "image", image_root: str | None = None,
                 image_size: int = 64, image_mean=(0.5, 0.5, 0.5), image_std=(0.5, 0.5, 0.5),
                 on_bad_image: str = "fail", max_image_pixels: int = MAX_PIXELS,
                 one_row_per_image: bool = False, **settings):
        super().__init__(*args, **settings)
        # images alone (task=mim): easy-VQA asks ~9 questions of each picture, one row per question
        self.one_row_per_image = one_row_per_image
        self.labelled.columns["image"] = image_column  # read beside the text and label
        self.image_root, self.image_size = image_root, image_size
        self.image_mean, self.image_std = list(image_mean), list(image_std)
        self.store = ImageStore(image_size, on_bad_image, max_image_pixels)
        if self.augment is not None and self.augment.text_steps and self.augment.mode == "online":
            raise UserError("Text augmentation of image-text data runs offline: set augment.mode=offline "
                            "(image augmentation always runs online).")

    def rows_read(self, split: str, table: pd.DataFrame) -> pd.DataFrame:
        """A split's rows whose image decodes (all of them, or the run stops, unless on_bad_image=skip),
        their paths resolved; each image is decoded once, into the store."""
        table = self._with_paths(split, table)
        if self.one_row_per_image:
            table = table.drop_duplicates("image")
        return table[self.store.add(list(table["image"]), split)]

    def source_table(self, split: str) -> pd.DataFrame:
        """One split as read, with its image paths resolved but not decoded: the audit reports the
        images that cannot be read instead of stopping at the first."""
        return self._with_paths(split, super().source_table(split))

    def _with_paths(self, split: str, table: pd.DataFrame) -> pd.DataFrame:
        root = self._root(split)
        return table.assign(image=[resolve(path, root) for path in table["image"]])

    def _root(self, split: str) -> Path | None:
        if self.image_root:
            return Path(self.image_root).expanduser()
        path = self.labelled.sources[split].path
        return Path(path).expanduser().parent if path and Path(path).expanduser().is_file() else None

    def shape(self) -> DataShape:
        return replace(super().shape(), image_size=self.image_size)

    def budget(self) -> dict:
        return {**super().budget(), "data.skipped_images": len(self.store.skipped),
                "data.image_size": self.image_size}

    def setup(self, stage: str | None = None) -> None:
        if self.tokenizer is None and self.has_text:
            raise RuntimeError("set_tokenizer() must be called before the data is set up")
        label_ids = {name: i for i, name in enumerate(self.label_names)}
        pixels = self.store.stacked()
        for split, table in self.tables().items():
            if split in self.datasets:
                continue
            if split == "train" and self.augment is not None and self.augment.text_steps:
                self.augment.fit(self.train_texts())
                table = self.augment.expand(table)
                text = LabelledExamples.encode(table, self.tokenizer, self.max_length, label_ids)
            else:
                text = self.examples(split, table, label_ids) if self.has_text else None
            image_index = torch.tensor([self.store.index[path] for path in table["image"]])
            labels = torch.tensor([label_ids[label] for label in table["label"]], dtype=torch.long)
            transform = self.augment.image() if split == "train" and self.augment else None
            self.datasets[split] = ImageTextExamples(text, pixels, image_index, labels, transform)

    def labelled_examples(self, split: str) -> ImageTextExamples:
        """A split's examples as read (images not augmented), in table order (explanations). A
        training split augmented offline keeps its added texts."""
        examples = self.datasets[split]
        return ImageTextExamples(examples.text, examples.pixels, examples.image_index, examples.labels)

    def augmentation_grid(self, count: int = 8) -> torch.Tensor | None:
        """uint8 image grid: the first training images, then two epochs of their augmentations."""
        transform = self.augment.image() if self.augment else None
        if transform is None:
            return None
        from torchvision.utils import make_grid

        paths = list(self.tables()["train"]["image"][:count])
        originals = [self.store.pixels[self.store.index[path]] for path in paths]
        rows = originals + [transform(image, epoch, i) for epoch in (0, 1)
                            for i, image in enumerate(originals)]
        return make_grid(torch.stack(rows), nrow=len(originals), padding=2)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        pad_id = self.tokenizer.pad_token_id if self.has_text else None
        return DataLoader(self.datasets[split], batch_size=self.batch_size, **self._order(split, shuffle),
                          collate_fn=ImageTextCollator(pad_id, self.image_mean, self.image_std),
                          **loader_settings(self.num_workers, self.trainer))
