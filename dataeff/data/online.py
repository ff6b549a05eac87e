"""Online augmentation: a training dataset that re-augments its text for every (epoch, index) that
`dataeff.data.order.EpochSampler` hands it: fresh each epoch, identical in any worker."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from dataeff.data.order import split_key


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

    def lengths(self) -> torch.Tensor:
        """Characters per example: the tokens are made per item, and length groups need an estimate."""
        pairs = self.pairs or [""] * len(self.texts)
        return torch.tensor([len(text) + len(pair) for text, pair in zip(self.texts, pairs)])

    def __getitem__(self, key):
        epoch, index = split_key(key)
        rng = self.augmentation.rng(epoch, self.rows[index])
        text = self.augmentation.text(self.texts[index], rng, copy=epoch)
        pair = self.augmentation.text(self.pairs[index], rng, copy=epoch) if self.pairs else None
        encoded = self.tokenizer(text, pair, truncation=True, max_length=self.max_length,
                                 return_token_type_ids=True)
        return (torch.tensor(encoded["input_ids"]), torch.tensor(encoded["token_type_ids"]),
                self.labels[index])
