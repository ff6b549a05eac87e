"""Labelled text for sequence classification (single sentences or pairs) under a label budget.

Everything is read once (`dataeff.data.tables`). Without a validation source, validation is split
off the training table (class-stratified, by `split_seed`) before the budget is drawn, so no budget
trains on a validation example and the validation set stays put when the budget or `data_seed` changes.
Budgets come from `draw_subset`, so they are nested across fractions for one seed. Table rows keep
their row number in the source as the pandas index, so subsets can be compared and hashed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from dataeff.augment.pipeline import describe
from dataeff.data.base import DataModule
from dataeff.data.examples import LabelledCollator, LabelledExamples, encode_table, label_tensor
from dataeff.data.loading import loader_settings
from dataeff.data.noise import flip_labels
from dataeff.data.online import OnlineTexts
from dataeff.data.order import EpochSampler
from dataeff.data.rows import label_order
from dataeff.data.sampling import draw_subset, subset_hash
from dataeff.data.shards import eval_order
from dataeff.data.sources import given_source
from dataeff.data.tables import read_columns, refuse_unknown_labels, split_validation
from dataeff.data.token_cache import Tensors, cache_file, load_or_build
from dataeff.data.unlabelled import UnlabelledCollator, UnlabelledTexts, read_unlabelled
from dataeff.errors import UserError
from dataeff.models.shape import DataShape

log = logging.getLogger(__name__)
VAL_SIZES = ("full", "matched")
BAD_ROWS = ("error", "skip")


class LabelledTextDataModule(DataModule):
    """Labelled text from sources with a `table()` method; see the module docstring."""

    def __init__(self, name: str, train, val=None, test=None, text_column: str = "text",
                 pair_column: str | None = None, label_column: str = "label", val_fraction: float = 0.1,
                 split_seed: int = 0, fraction: float | None = 1.0, shots: int | None = None,
                 data_seed: int = 0, val_size: str = "matched", max_length: int = 128,
                 batch_size: int = 32, num_workers: int | str = "auto", augment=None,
                 on_bad_row: str = "error", cache_dir: str | None = None, unlabelled=None,
                 unlabelled_label_column: str | None = None,
                 ssl=None, label_noise: float = 0.0, noise_seed: int = 0, labels=None,
                 group_by_length: bool = True):
        super().__init__()
        if on_bad_row not in BAD_ROWS:
            raise UserError(f"data.on_bad_row={on_bad_row!r} is not one of {BAD_ROWS}: error stops at the "
                            "first row without a text or a label, skip drops such rows and counts them.")
        if val_size not in VAL_SIZES:
            raise UserError(f"data.val_size={val_size!r} is not one of {VAL_SIZES}; use data.val_size=full "
                            "(the whole dev set) or data.val_size=matched (about as large as the train "
                            "subset).")
        self.name = name
        self.sources = {"train": given_source(train, "data.train"), "val": given_source(val, "data.val"),
                        "test": given_source(test, "data.test")}
        if self.sources["train"] is None:
            raise UserError("data.train names no training data: set data.train.path=<file>.")
        self.columns = {"text": text_column, "pair": pair_column, "label": label_column}
        self.val_fraction, self.split_seed, self.val_size = val_fraction, split_seed, val_size
        self.fraction, self.shots, self.data_seed = fraction, shots, data_seed
        self.max_length, self.batch_size, self.num_workers = max_length, batch_size, num_workers
        self.group_by_length = group_by_length  # batches of similar lengths (dataeff.data.order)
        self.augment = augment if augment is not None and augment.active else None
        self.on_bad_row, self.skipped_rows = on_bad_row, 0
        self.label_noise, self.noise_seed = label_noise, noise_seed
        self.known_labels = [str(label) for label in labels or []]  # classes training may lack
        self.flipped_rows: set[int] = set()  # training rows whose label data.label_noise flipped
        self.cache_dir = cache_dir  # token ids of each table, shared by the jobs of a study
        # ssl=...: unlabelled text beside the labels, `ssl.ratio` unlabelled examples per labelled one
        active = ssl is not None and ssl.get("objective") is not None  # ssl=none: supervised only
        self.ssl = ssl if active else None
        self.unlabelled = (given_source(unlabelled, "data.unlabelled"), unlabelled_label_column)
        self.tokenizer = None
        self._read_tables: dict[str, pd.DataFrame] = {}  # each source as read, before splits and budgets
        self._token_files: dict[str, Path] = {}  # their token caches, under the current tokenizer
        self._labels: list[str] = []
        self._tables: dict[str, pd.DataFrame] | None = None
        self.datasets: dict[str, LabelledExamples] = {}

    def tables(self) -> dict[str, pd.DataFrame]:
        """`train` (the budget's subset), `val` and, if given, `test`: columns text, [pair], label."""
        if self._tables is None:
            self._tables = self._build_tables()
        return self._tables

    def _build_tables(self) -> dict[str, pd.DataFrame]:
        full = self._read_tables["train"] = self._read("train")
        self._labels = sorted(set(full["label"]) | set(self.known_labels), key=label_order)
        if len(self._labels) < 2:
            raise UserError(f"The training data {self.sources['train']} has one class in column "
                            f"{self.columns['label']!r} ({self._labels[0]!r} on all {len(full)} rows): a "
                            "classifier needs at least two. Check data.label_column (and data.on_bad_row="
                            "skip, which may have dropped the other classes' rows), or the file.")
        if self.sources["val"] is None:
            pool, val = split_validation(full, self.val_fraction, self.split_seed, self.sources["train"])
        else:
            pool, val = full, self._read("val")
            self._read_tables["val"] = val
        tables = {"train": pool.iloc[self._draw_budget(pool)], "val": val}
        if self.has_test:
            tables["test"] = self._read_tables["test"] = self._read("test")
        if self.val_size == "matched":
            keep = draw_subset(list(val["label"]), fraction=min(1.0, len(tables["train"]) / len(val)),
                               seed=self.data_seed)
            tables["val"] = val.iloc[keep]
        return tables

    def source_table(self, split: str) -> pd.DataFrame:
        """One split as read (text, [pair], label; index: the row in the source), before any
        validation split or budget, its labels unchecked: what an active-learning loop queries
        and what the data audit reads."""
        return self._read(split, check_labels=False)

    def _read(self, split: str, check_labels: bool = True) -> pd.DataFrame:
        """The used columns as stripped strings, renamed text/pair/label (see `read_columns`)."""
        source = self.sources[split]
        table, skipped = read_columns(source, self.columns, split, self.on_bad_row)
        self.skipped_rows += skipped
        if split != "train" and check_labels:
            refuse_unknown_labels(table, self._labels, split, source)
        if split == "train" and self.label_noise:
            table, self.flipped_rows = flip_labels(table, self.label_noise, self.noise_seed)
        return table

    def _draw_budget(self, pool: pd.DataFrame) -> np.ndarray:
        fraction = self.fraction if self.shots is None else None  # shots, when set, win
        return draw_subset(list(pool["label"]), fraction=fraction, shots=self.shots, seed=self.data_seed)

    @property
    def label_names(self) -> list[str]:
        self.tables()
        return list(self._labels)

    def shape(self) -> DataShape:
        return DataShape(self.name, tuple(self.label_names))

    @property
    def has_test(self) -> bool:
        return self.sources["test"] is not None

    def budget(self) -> dict:
        """What the run trains and validates on, to log with it."""
        tables = self.tables()
        return {"data.train_size": len(tables["train"]), "data.val_size": len(tables["val"]),
                "data.labels": len(tables["train"]) + len(tables["val"]),  # every label the run saw
                "data.test_size": len(tables.get("test", ())), "data.num_classes": len(self._labels),
                "data.skipped_rows": self.skipped_rows,
                **({"data.flipped_labels": len(self.flipped_rows)} if self.label_noise else {}),
                "data.subset_hash": subset_hash(tables["train"].index.to_numpy())}

    def train_texts(self) -> list[str]:
        """Every text of the whole training table (labelled or not), e.g. to train a tokenizer."""
        self.tables()
        full = self._read_tables["train"]
        return list(full["text"]) + (list(full["pair"]) if "pair" in full else [])

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

    def _unlabelled(self, label_ids: dict[str, int]) -> UnlabelledTexts:
        texts, truth = read_unlabelled(*self.unlabelled, label_ids)
        augmentation = self.ssl.get("augment")
        if augmentation is not None:
            augmentation.fit(self.train_texts() + texts)  # corpus statistics (TF-IDF) see all the text
        return UnlabelledTexts(texts, truth, self.tokenizer, self.max_length, augmentation)

    def examples(self, split: str, table: pd.DataFrame, label_ids: dict[str, int]) -> LabelledExamples:
        """A split's examples, cut out of its source table's cached token ids."""
        if self.cache_dir is None:
            return LabelledExamples.encode(table, self.tokenizer, self.max_length, label_ids)
        source = self._read_tables[self._source(split)]
        positions = torch.from_numpy(source.index.get_indexer(table.index))
        return LabelledExamples.from_tokens(load_or_build(*self._source_cache(split)),
                                            label_tensor(table, label_ids), positions)

    def _source(self, split: str) -> str:
        """The table a split's rows come from: validation is split off train unless it has a file."""
        return "train" if split == "val" and "val" not in self._read_tables else split

    def _source_cache(self, split: str) -> tuple[Path, Callable[[], Tensors]]:
        """Where the token ids of a split's source table are cached, and how to make them."""
        name = self._source(split)
        source = self._read_tables[name]
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
                source = self._read_tables[self._source(split)]
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
        labelled = self._loader("train", shuffle=True)
        if self.ssl is None:
            return labelled
        # Lightning combines the two (max_size_cycle): each step gets a batch of each
        batch_size = self.batch_size * self.ssl.ratio
        unlabelled = DataLoader(self.datasets["unlabelled"], batch_size=batch_size,
                                sampler=self._training_order("unlabelled", batch_size),
                                collate_fn=UnlabelledCollator(self.tokenizer.pad_token_id),
                                **loader_settings(self.num_workers, self.trainer))
        return {"labelled": labelled, "unlabelled": unlabelled}

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
