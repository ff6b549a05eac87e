"""Text DataModule: read once, split once, tokenize once (cached on disk), then pad per batch or
pack whole texts into rows (`packing`, training split only: validation stays one text per row).
A text longer than `max_length` tokens is split into consecutive pieces, never cut short."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from dataeff.data.base import DataModule
from dataeff.data.loading import loader_settings
from dataeff.data.packing import PackedCollator, PackedTexts
from dataeff.data.padding import pad_batch
from dataeff.data.shards import eval_order
from dataeff.data.sources import given_source
from dataeff.data.token_cache import cache_file, load_or_build
from dataeff.errors import UserError

log = logging.getLogger(__name__)


class TokenizedTexts(Dataset):
    """Token ids of many texts stored flat (one id tensor, one offset tensor): compact and fast."""

    def __init__(self, ids: torch.Tensor, offsets: torch.Tensor):
        self.ids, self.offsets = ids, offsets

    @classmethod
    def encode(cls, texts: list[str], tokenizer, max_length: int) -> tuple[TokenizedTexts, int]:
        """Every text in rows of at most `max_length` tokens: a longer one becomes several rows of
        consecutive pieces, each with its [CLS] and [SEP] (the tokenizer's overflow), so no text is
        cut short. Also returns how many texts were split."""
        encoded = tokenizer(texts, truncation=True, max_length=max_length, return_overflowing_tokens=True)
        pieces = np.bincount(encoded["overflow_to_sample_mapping"], minlength=len(texts))
        rows = encoded["input_ids"]
        lengths = torch.tensor([0] + [len(ids) for ids in rows])
        ids = torch.tensor([i for seq in rows for i in seq], dtype=torch.int32)
        return cls(ids, torch.cumsum(lengths, 0)), int((pieces > 1).sum())

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.ids[self.offsets[index]:self.offsets[index + 1]].long()

    def num_tokens(self) -> int:
        return len(self.ids)


class PadCollator:
    """Pad a batch to its longest sequence (dynamic padding), or to `length`, and mark the real
    tokens."""

    def __init__(self, pad_id: int, length: int | None = None):
        self.pad_id, self.length = pad_id, length

    def __call__(self, sequences: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        input_ids = pad_batch(sequences, self.pad_id, self.length)
        return {"input_ids": input_ids, "attention_mask": (input_ids != self.pad_id).long()}


class TextDataModule(DataModule):
    """Unlabelled text for masked-LM pretraining, from any `dataeff.data.sources` source."""

    def __init__(self, name: str, train, val=None, val_fraction: float = 0.1, split_seed: int = 0,
                 max_length: int = 128, batch_size: int = 32, num_workers: int | str = "auto",
                 cache_dir: str = ".cache/dataeff", packing: bool = False, pad_to_max_length: bool = False):
        super().__init__()
        self.name, self.val_source = name, given_source(val, "data.val")
        self.train_source = given_source(train, "data.train")
        if self.train_source is None:
            raise UserError("data.train names no training corpus: set data.train.path=<file>.")
        self.val_fraction, self.split_seed = val_fraction, split_seed
        self.max_length, self.batch_size, self.num_workers = max_length, batch_size, num_workers
        self.cache_dir, self.packing = Path(cache_dir), packing
        self.pad_to = max_length if pad_to_max_length else None  # one shape for a compiled model
        self.tokenizer = None
        self._texts: dict[str, list[str]] | None = None
        self.datasets: dict[str, TokenizedTexts | PackedTexts] = {}

    def texts(self, split: str) -> list[str]:
        """The raw texts of `train` or `val`, read and split once."""
        if self._texts is None:
            self._texts = self._read_and_split()
        return self._texts[split]

    def _read_and_split(self) -> dict[str, list[str]]:
        train = self.train_source.texts()
        if not train:
            raise UserError(f"The training corpus {self.train_source} has no non-empty text; point "
                            "data.train.path at a file with text in data.train.column.")
        if self.val_source is not None:
            val = self.val_source.texts()
            if not val:
                raise UserError(f"The validation corpus {self.val_source} has no non-empty text; fix "
                                "data.val.path / data.val.column, or set data.val=null to split "
                                "it from train.")
            return {"train": train, "val": val}
        if not 0 < self.val_fraction < 1:
            raise UserError(f"data.val_fraction={self.val_fraction} must be in (0, 1) when no "
                            "validation file is given; set e.g. data.val_fraction=0.1 or data.val.path=...")
        order = np.random.default_rng(self.split_seed).permutation(len(train))
        n_val = max(1, round(self.val_fraction * len(train)))
        if n_val >= len(train):
            raise UserError(f"The corpus {self.train_source} has {len(train)} text(s): too few to "
                            "split off a validation set; add text or give data.val.path.")
        return {"train": [train[i] for i in order[n_val:]], "val": [train[i] for i in order[:n_val]]}

    def train_texts(self) -> list[str]:
        """The text a new tokenizer is trained on (the same call on every DataModule)."""
        return self.texts("train")

    def prepare_data(self) -> None:
        """Tokenize each split once; runs on one process per node, so writes never race."""
        for split in ("train", "val"):
            if not self._cache_path(split).exists():
                self._tokens(split)

    def setup(self, stage: str | None = None) -> None:
        for split in ("train", "val"):
            if split not in self.datasets:
                cached = self._tokens(split)
                self.datasets[split] = TokenizedTexts(cached["ids"], cached["offsets"])
        if self.packing and not isinstance(self.datasets["train"], PackedTexts):
            packed = self.datasets["train"] = PackedTexts(self.datasets["train"], self.max_length,
                                                           self.split_seed)
            log.info("Packed %d training texts into %d rows of %d tokens (%.0f%% text)",
                     len(packed.texts), len(packed), self.max_length, 100 * packed.fill)

    def _tokens(self, split: str) -> dict[str, torch.Tensor]:
        return load_or_build(self._cache_path(split), lambda: self._encode(split))

    def run_tags(self) -> dict:
        """How many texts of each split were longer than max_length, and so split into pieces."""
        tags = {}
        for split in ("train", "val"):
            count = tags[f"data.split_texts.{split}"] = int(self._tokens(split)["split_texts"])
            if count:
                log.info("%d %s texts are longer than data.max_length=%d tokens: each is split into rows of "
                         "consecutive pieces, none is cut short", count, split, self.max_length)
        return tags

    def _encode(self, split: str) -> dict[str, torch.Tensor]:
        encoded, split_texts = TokenizedTexts.encode(self.texts(split), self.tokenizer, self.max_length)
        return {"ids": encoded.ids, "offsets": encoded.offsets, "split_texts": torch.tensor(split_texts)}

    def _cache_path(self, split: str) -> Path:
        if self.tokenizer is None:
            raise RuntimeError("set_tokenizer() must be called before the data is prepared")
        return cache_file(self.cache_dir, "text", self.texts(split), self.tokenizer, self.max_length)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        dataset, pad_id = self.datasets[split], self.tokenizer.pad_token_id
        order = {"shuffle": True} if shuffle else eval_order(dataset)
        collate = (PackedCollator if isinstance(dataset, PackedTexts) else PadCollator)(pad_id, self.pad_to)
        return DataLoader(dataset, batch_size=self.batch_size, **order, collate_fn=collate,
                          **loader_settings(self.num_workers, self.trainer))
