"""Online augmentation: a sampler that tags each index with its epoch, and a training dataset
that re-augments its text for every (epoch, index): fresh each epoch, identical in any worker."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, Sampler


class EpochSampler(Sampler):
    """Shuffled `(draw, index)` pairs; Lightning calls `set_epoch` at the start of every epoch. A
    loader that runs out within an epoch (the shorter of two that Lightning cycles, as in
    semi-supervised training) starts another pass: a new draw, so a new order and new
    augmentations, the same again for the same epoch and pass."""

    PASS_STRIDE = 1_000_001  # draw = epoch + pass x this: unique, and the first pass's draw is the epoch

    def __init__(self, size: int, seed: int = 0):
        self.size, self.seed, self.epoch, self.passes = size, seed, 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.passes = epoch, 0

    def __iter__(self):
        draw = self.epoch + self.passes * self.PASS_STRIDE
        self.passes += 1
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + draw))
        return iter([(draw, index) for index in order.tolist()])

    def __len__(self) -> int:
        return self.size


def split_key(key) -> tuple[int, int]:
    """Datasets take a plain index (no augmentation: epoch 0) or an (epoch, index) pair."""
    return key if isinstance(key, tuple) else (0, key)


class OnlineTexts(Dataset):
    """Labelled training text, augmented and tokenized per item: (ids, types, label)."""

    def __init__(self, table, augmentation, tokenizer, max_length: int, label_ids: dict[str, int]):
        self.texts = list(table["text"])
        self.pairs = list(table["pair"]) if "pair" in table else None
        self.rows = [int(i) for i in table.index]
        self.labels = [label_ids[label] for label in table["label"]]
        self.augmentation, self.tokenizer, self.max_length = augmentation, tokenizer, max_length

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key):
        epoch, index = split_key(key)
        rng = self.augmentation.rng(epoch, self.rows[index])
        text = self.augmentation.text(self.texts[index], rng, copy=epoch)
        pair = self.augmentation.text(self.pairs[index], rng, copy=epoch) if self.pairs else None
        encoded = self.tokenizer(text, pair, truncation=True, max_length=self.max_length,
                                 return_token_type_ids=True)
        return (torch.tensor(encoded["input_ids"]), torch.tensor(encoded["token_type_ids"]),
                self.labels[index])
