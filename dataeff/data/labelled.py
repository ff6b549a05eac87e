"""Labelled data for classification under a label budget: the tables (`LabelledTables`), and
what a data module makes of them. `LabelledDataModule` holds what text and image-text data share
(token ids cut out of a cache per source, batch order, tags); `LabelledTextDataModule` adds text's
own: online augmentation, unlabelled text for semi-supervised learning, and SetFit's pairs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from dataeff.augment.pipeline import describe
from dataeff.data.base import DataModule
from dataeff.data.examples import (
    LabelledCollator,
    LabelledExamples,
    PairCollator,
    encode_table,
    label_tensor,
)
from dataeff.data.labelled_tables import LabelledTables
from dataeff.data.loading import loader_settings
from dataeff.data.online import OnlineTexts
from dataeff.data.order import EpochSampler
from dataeff.data.shards import eval_order
from dataeff.data.sources import given_source
from dataeff.data.token_cache import Tensors, cache_file, load_or_build
from dataeff.data.unlabelled import UnlabelledCollator, UnlabelledTexts, read_unlabelled
from dataeff.errors import UserError
from dataeff.models.shape import DataShape

log = logging.getLogger(__name__)


class LabelledDataModule(DataModule):
    """Labelled examples from `data.train`, `data.val`, `data.test` under a label budget (see
    `LabelledTables` for the settings that read and draw them). Subclasses build the datasets."""

    def __init__(self, name: str, train, val=None, test=None, text_column: str | None = "text",
                 pair_column: str | None = None, label_column: str = "label", val_fraction: float = 0.1,
                 split_seed: int = 0, fraction: float | None = 1.0, shots: int | None = None,
                 data_seed: int = 0, val_size: str = "matched", on_bad_row: str = "error",
                 label_noise: float = 0.0, noise_seed: int = 0, labels=None, max_length: int = 128,
                 batch_size: int = 32, num_workers: int | str = "auto", augment=None,
                 cache_dir: str | None = None, group_by_length: bool = True):
        super().__init__()
        self.name = name
        sources = {split: given_source(source, f"data.{split}")
                   for split, source in (("train", train), ("val", val), ("test", test))}
        columns = {"text": text_column, "pair": pair_column, "label": label_column}
        self.labelled = LabelledTables(sources, columns, val_fraction, split_seed, fraction, shots, data_seed,
                                       val_size, on_bad_row, label_noise, noise_seed, labels, self.rows_read)
        self.max_length, self.batch_size, self.num_workers = max_length, batch_size, num_workers
        self.group_by_length = group_by_length  # batches of similar lengths (dataeff.data.order)
        self.augment = augment if augment is not None and augment.active else None
        self.cache_dir = cache_dir  # token ids of each table, shared by the jobs of a study
        self._token_files: dict[str, Path] = {}  # the sources' token caches, under the current tokenizer
        self.datasets: dict = {}

    def tables(self) -> dict[str, pd.DataFrame]:
        """`train` (the budget's subset), `val` and, if given, `test`: columns text, [pair], label."""
        return self.labelled.tables()

    def rows_read(self, split: str, table: pd.DataFrame) -> pd.DataFrame:
        """The rows of a split as read that this data keeps (all, here), before the budget is drawn."""
        return table

    def source_table(self, split: str) -> pd.DataFrame:
        return self.labelled.source_table(split)

    @property
    def label_names(self) -> list[str]:
        return self.labelled.label_names

    @property
    def columns(self) -> dict[str, str | None]:
        """The column each role (text, pair, label, image) is read from."""
        return self.labelled.columns

    def shape(self) -> DataShape:
        return DataShape(self.name, tuple(self.label_names))

    @property
    def has_test(self) -> bool:
        return self.labelled.has_test

    def budget(self) -> dict:
        return self.labelled.budget()

    def train_texts(self) -> list[str]:
        return self.labelled.train_texts() if self.has_text else []

    @property
    def has_text(self) -> bool:
        return self.labelled.columns["text"] is not None

    def set_tokenizer(self, tokenizer) -> None:
        self.tokenizer, self.datasets = tokenizer, {}  # a new tokenizer makes old ids meaningless
        self._token_files = {}

    def prepare_data(self) -> None:
        """Tokenize each source table into the cache once (Lightning runs this on one process per node)."""
        if self.tokenizer is not None and self.cache_dir is not None and self.has_text:
            for split in [split for split in self.tables() if split not in self.datasets]:
                path, build = self._source_cache(split)
                if not path.exists():
                    load_or_build(path, build)

    def examples(self, split: str, table: pd.DataFrame, label_ids: dict[str, int]) -> LabelledExamples:
        """A split's examples, cut out of its source table's cached token ids."""
        if self.cache_dir is None:
            return LabelledExamples.encode(table, self.tokenizer, self.max_length, label_ids)
        source = self.labelled.as_read[self.labelled.source_of(split)]
        positions = torch.from_numpy(source.index.get_indexer(table.index))
        return LabelledExamples.from_tokens(load_or_build(*self._source_cache(split)),
                                            label_tensor(table, label_ids), positions)

    def _source_cache(self, split: str) -> tuple[Path, Callable[[], Tensors]]:
        """Where the token ids of a split's source table are cached, and how to make them."""
        name = self.labelled.source_of(split)
        source = self.labelled.as_read[name]
        if name not in self._token_files:  # hashing every text costs: once per table
            texts = list(source["text"]) + (["\0pairs"] + list(source["pair"]) if "pair" in source else [])
            self._token_files[name] = cache_file(self.cache_dir, "labelled", texts, self.tokenizer,
                                                 self.max_length)
        return self._token_files[name], lambda: encode_table(source, self.tokenizer, self.max_length)

    def run_tags(self) -> dict:
        """The budget drawn, how many texts are cut to max_length, and the augmentation settings
        (`augment.*`, or `augment.name: none`)."""
        return {**self.budget(), **self.truncation(), **describe(self.augment)}

    def truncation(self) -> dict[str, int]:
        """Per split, how many examples are longer than `max_length` tokens and cut to it (a
        classifier reads one window), as tags `data.truncated.<split>`; said in the log too."""
        if self.tokenizer is None or not self.has_text:
            return {}
        counts = {}
        for split, table in self.tables().items():
            if self.cache_dir is None:
                cut = encode_table(table, self.tokenizer, self.max_length)["truncated"]
            else:
                source = self.labelled.as_read[self.labelled.source_of(split)]
                rows = source.index.get_indexer(table.index)
                cut = load_or_build(*self._source_cache(split))["truncated"][rows]
            counts[split] = int(cut.sum())
            if counts[split]:
                log.warning("%d of %d %s examples are longer than data.max_length=%d tokens and are cut "
                            "to it; raise data.max_length to keep more of their text", counts[split],
                            len(table), split, self.max_length)
        return {f"data.truncated.{split}": count for split, count in counts.items()}

    def load_reports(self) -> dict:
        return self.augment.load_reports() if self.augment is not None else {}

    def augmentation_samples(self) -> str | None:
        """A Markdown sample of training text beside its augmentations, to log with the run."""
        if self.augment is None or not self.augment.text_steps:
            return None
        self.augment.fit(self.train_texts())
        return self.augment.text_samples(self.tables()["train"])

    def train_dataloader(self) -> DataLoader | dict[str, DataLoader]:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        if not self.has_test:
            raise UserError("No test data is configured; set data.test.path=... to evaluate on a test set.")
        return self._loader("test", shuffle=False)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(self.datasets[split], batch_size=self.batch_size,
                          collate_fn=LabelledCollator(self.tokenizer.pad_token_id),
                          **self._order(split, shuffle), **loader_settings(self.num_workers, self.trainer))

    def _order(self, split: str, shuffle: bool) -> dict:
        """Training: an EpochSampler, which hands each index over with its epoch (online augmentation
        needs it) and groups lengths. Its order follows the training seed (`seed`, which seeded
        torch), as plain shuffling does; the augmentation draws follow `augment.seed`."""
        if not shuffle:
            dataset = self.datasets[split]
            return eval_order(dataset, dataset.lengths() if self.group_by_length else None)
        return {"sampler": self._training_order(split, self.batch_size)}

    def _training_order(self, split: str, batch_size: int) -> EpochSampler:
        dataset = self.datasets[split]
        lengths = dataset.lengths() if self.group_by_length else None
        world = self.trainer.world_size if self.trainer is not None else 1
        return EpochSampler(len(dataset), torch.initial_seed(), lengths, batch_size * world)


class LabelledTextDataModule(LabelledDataModule):
    """Labelled text (single sentences or pairs); `ssl=...` adds unlabelled text beside the labels,
    `ssl.ratio` unlabelled examples per labelled one (`data.unlabelled`: its file). With `pairs`
    (task=setfit's: it makes a dataset of pairs from the training examples), training batches are
    pairs of labelled examples instead of the examples."""

    def __init__(self, *args, unlabelled=None, unlabelled_label_column: str | None = None, ssl=None,
                 pairs: Callable[[Dataset], Dataset] | None = None, **settings):
        super().__init__(*args, **settings)
        self.pairs = pairs
        active = ssl is not None and ssl.get("objective") is not None  # ssl=none: supervised only
        self.ssl = ssl if active else None
        self.unlabelled = (given_source(unlabelled, "data.unlabelled"), unlabelled_label_column)

    def setup(self, stage: str | None = None) -> None:
        if self.tokenizer is None:
            raise RuntimeError("set_tokenizer() must be called before the data is set up")
        label_ids = {name: i for i, name in enumerate(self.label_names)}
        for split, table in self.tables().items():
            if split in self.datasets:
                continue
            if split == "train" and self.augment is not None and self.augment.text_steps:
                self.augment.fit(self.train_texts())
                if self.augment.mode == "online":
                    self.datasets[split] = OnlineTexts(table, self.augment, self.tokenizer, self.max_length,
                                                       label_ids)
                    continue
                self.datasets[split] = LabelledExamples.encode(self.augment.expand(table), self.tokenizer,
                                                               self.max_length, label_ids)
                continue
            self.datasets[split] = self.examples(split, table, label_ids)
        if self.ssl is not None and "unlabelled" not in self.datasets:
            self.datasets["unlabelled"] = self._unlabelled(label_ids)
        if self.pairs is not None and "pairs" not in self.datasets:
            self.datasets["pairs"] = self.pairs(self.datasets["train"])

    def labelled_examples(self, split: str) -> LabelledExamples:
        """A split's examples as read (not augmented), in table order, whatever the training batches
        are (SetFit fits its head on the training examples after their pairs; explanations)."""
        if split == "train" and self.augment is not None:
            if "train_as_read" not in self.datasets:
                label_ids = {name: i for i, name in enumerate(self.label_names)}
                self.datasets["train_as_read"] = self.examples("train", self.tables()["train"], label_ids)
            return self.datasets["train_as_read"]
        return self.datasets[split]

    def _unlabelled(self, label_ids: dict[str, int]) -> UnlabelledTexts:
        texts, truth = read_unlabelled(*self.unlabelled, label_ids)
        augmentation = self.ssl.get("augment")
        if augmentation is not None:
            augmentation.fit(self.train_texts() + texts)  # corpus statistics (TF-IDF) see all the text
        return UnlabelledTexts(texts, truth, self.tokenizer, self.max_length, augmentation)

    def train_dataloader(self) -> DataLoader | dict[str, DataLoader]:
        if self.pairs is not None:
            return DataLoader(self.datasets["pairs"], batch_size=self.batch_size,
                              sampler=self._training_order("pairs", self.batch_size),
                              collate_fn=PairCollator(self.tokenizer.pad_token_id),
                              **loader_settings(self.num_workers, self.trainer))
        labelled = super().train_dataloader()
        if self.ssl is None:
            return labelled
        # Lightning combines the two (max_size_cycle): each step gets a batch of each
        batch_size = self.batch_size * self.ssl.ratio
        unlabelled = DataLoader(self.datasets["unlabelled"], batch_size=batch_size,
                                sampler=self._training_order("unlabelled", batch_size),
                                collate_fn=UnlabelledCollator(self.tokenizer.pad_token_id),
                                **loader_settings(self.num_workers, self.trainer))
        return {"labelled": labelled, "unlabelled": unlabelled}
