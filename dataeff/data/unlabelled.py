"""Unlabelled text for semi-supervised training (`ssl=...`): each item is a sentence and, when the
method perturbs it (`ssl.augment`), a fresh perturbed copy every epoch; with its true label's id
where a simulation knows it (-1 otherwise), to measure how often the pseudo-labels are right."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from dataeff.data.examples import LabelledCollator
from dataeff.data.order import split_key
from dataeff.data.rows import column_text
from dataeff.errors import UserError


def read_unlabelled(source, label_column: str | None,
                    label_ids: dict[str, int]) -> tuple[list[str], list[int]]:
    """The non-empty texts of `source` (a TextFile) and their label ids (-1: unknown or unseen)."""
    table = source.table()
    for column in [source.column, label_column]:
        if column is not None and column not in table.columns:
            raise UserError(f"Column {column!r} is not in the unlabelled data {source.path}; its columns "
                            f"are {list(map(str, table.columns))}. Set data.unlabelled.column= (the text) or "
                            "data.unlabelled_label_column= (known labels, to score pseudo-labels) to one "
                            "of them.")
    table = table.reset_index(drop=True)
    texts = column_text(table, source.column, source, "data.unlabelled.column")
    keep = texts != ""
    if not keep.any():
        raise UserError(f"The unlabelled data {source.path} has no text in column {source.column!r}.")
    truth = column_text(table, label_column, source, "data.unlabelled_label_column") if label_column \
        else texts.map(lambda _: "")
    return texts[keep].tolist(), [label_ids.get(label, -1) for label in truth[keep]]


class UnlabelledTexts(Dataset):
    """Items: (ids, types) of the sentence, (ids, types) of its perturbed copy, the true label id."""

    def __init__(self, texts: list[str], truth: list[int], tokenizer, max_length: int, augmentation=None):
        self.texts, self.truth = texts, truth
        self.tokenizer, self.max_length, self.augmentation = tokenizer, max_length, augmentation

    def __len__(self) -> int:
        return len(self.texts)

    def lengths(self) -> torch.Tensor:
        """Characters per sentence: an estimate for length groups (the tokens are made per item)."""
        return torch.tensor([len(text) for text in self.texts])

    def __getitem__(self, key):
        epoch, index = split_key(key)
        text = self.texts[index]
        teacher = self._encode(text)
        if self.augmentation is None:
            return teacher, None, self.truth[index]
        perturbed = self.augmentation.text(text, self.augmentation.rng(epoch, index), copy=epoch)
        return teacher, self._encode(perturbed), self.truth[index]

    def _encode(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        encoded = self.tokenizer(text, truncation=True, max_length=self.max_length,
                                 return_token_type_ids=True)
        return torch.tensor(encoded["input_ids"]), torch.tensor(encoded["token_type_ids"])


class UnlabelledCollator:
    """{"teacher": a padded batch with `labels` = the true ids, "student": the perturbed copies, or
    absent when the method trains on the sentence itself}."""

    def __init__(self, pad_id: int):
        self.pad = LabelledCollator(pad_id)

    def __call__(self, items) -> dict:
        teachers, students, truth = zip(*items)
        batch = {"teacher": self.pad([(*pair, label) for pair, label in zip(teachers, truth)])}
        if students[0] is not None:
            student = self.pad([(*pair, label) for pair, label in zip(students, truth)])
            student.pop("labels")
            batch["student"] = student
        return batch
