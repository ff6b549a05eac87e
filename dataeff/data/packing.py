"""Sequence packing for masked-LM pretraining: whole texts side by side in one row of
`max_length`, so a batch holds text instead of padding (short sentences padded to the longest of
their batch are about half padding).

A text is never cut: rows are filled first-fit from the texts in a seeded random order. Each
token carries the number of its text in the row (`segment_ids`, 0 for padding) and its position
within that text (`position_ids`), so the model attends within a text only and sees the same
positions as unpacked (`dataeff.models.bert.packed_attention_mask`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset


def pack(lengths: np.ndarray, max_length: int, seed: int = 0, open_rows: int = 32) -> list[np.ndarray]:
    """Indices of the texts in each row. First fit over the texts in a seeded order: a text goes
    to the first of the `open_rows` unfinished rows with room for it (a new row otherwise, closing
    the fullest when too many are open). Rows end up about 95% text where one-row-at-a-time
    filling leaves a fifth empty."""
    rows: list[list[int]] = []
    room: list[int] = []  # plain lists: at most `open_rows` items, where numpy's per-call cost dominates
    done = []
    for index in np.random.default_rng(seed).permutation(len(lengths)).tolist():
        length = int(lengths[index])
        for slot, left in enumerate(room):
            if left >= length:
                rows[slot].append(index)
                room[slot] = left - length
                break
        else:
            rows.append([index])
            room.append(max_length - length)
            if len(rows) > open_rows:
                fullest = room.index(min(room))
                done.append(rows.pop(fullest))
                room.pop(fullest)
    return [np.asarray(row) for row in done + rows]


def starts(lengths: torch.Tensor) -> torch.Tensor:
    """Where each of consecutive pieces of these lengths begins (an exclusive cumulative sum)."""
    return torch.cumsum(lengths, 0) - lengths


def spans(begins: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The indices begin, begin+1, ... of each (begin, length), end to end: one gather for many
    slices instead of a tensor per slice."""
    return torch.arange(int(lengths.sum())) + torch.repeat_interleave(begins - starts(lengths), lengths)


@dataclass
class PackedRows:
    """A batch of packed rows as the collator takes it: every text's tokens end to end, each
    text's length and each row's number of texts (a few tensors, not a tensor per text)."""

    ids: torch.Tensor  # (tokens,)
    lengths: torch.Tensor  # (texts,) tokens of each text
    counts: torch.Tensor  # (rows,) texts in each row


class PackedTexts(Dataset):
    """Rows of whole texts from a `TokenizedTexts` (each text at most `max_length` tokens). The
    DataLoader fetches a batch with `__getitems__`: two gathers over the flat token store."""

    def __init__(self, texts, max_length: int, seed: int = 0):
        self.texts = texts
        lengths = (texts.offsets[1:] - texts.offsets[:-1]).numpy()
        rows = pack(lengths, max_length, seed)
        self.row_texts = torch.from_numpy(np.concatenate(rows)).long()  # each row's texts, end to end
        self.row_offsets = torch.cumsum(torch.tensor([0] + [len(row) for row in rows]), 0)
        self.fill = lengths.sum() / (len(rows) * max_length)  # real share of a full row

    def __len__(self) -> int:
        return len(self.row_offsets) - 1

    def __getitem__(self, index: int) -> PackedRows:
        return self.__getitems__([index])

    def __getitems__(self, indices: list[int]) -> PackedRows:
        rows = torch.as_tensor(indices, dtype=torch.long)
        counts = self.row_offsets[rows + 1] - self.row_offsets[rows]
        texts = self.row_texts[spans(self.row_offsets[rows], counts)]
        offsets = self.texts.offsets
        lengths = offsets[texts + 1] - offsets[texts]
        return PackedRows(self.texts.ids[spans(offsets[texts], lengths)].long(), lengths, counts)


class PackedCollator:
    """Packed rows -> input_ids, attention_mask (real tokens), segment_ids and position_ids,
    padded to the longest row of the batch, or to `length`; built by one scatter per tensor."""

    def __init__(self, pad_id: int, length: int | None = None):
        self.pad_id, self.length = pad_id, length

    def __call__(self, batch: PackedRows) -> dict[str, torch.Tensor]:
        rows, texts = len(batch.counts), len(batch.lengths)
        row_of_text = torch.repeat_interleave(torch.arange(rows), batch.counts)
        segment = torch.arange(texts) - starts(batch.counts)[row_of_text] + 1
        row_length = torch.zeros(rows, dtype=torch.long).index_add_(0, row_of_text, batch.lengths)
        text_of_token = torch.repeat_interleave(torch.arange(texts), batch.lengths)
        row_of_token = row_of_text[text_of_token]
        token = torch.arange(len(batch.ids))
        column = token - starts(row_length)[row_of_token]
        position = token - starts(batch.lengths)[text_of_token]
        shape = (rows, self.length or int(row_length.max()))
        input_ids = torch.full(shape, self.pad_id, dtype=torch.long)
        segment_ids, position_ids = torch.zeros(shape, dtype=torch.long), torch.zeros(shape, dtype=torch.long)
        input_ids[row_of_token, column] = batch.ids
        segment_ids[row_of_token, column] = segment[text_of_token]
        position_ids[row_of_token, column] = position
        return {"input_ids": input_ids, "attention_mask": (segment_ids > 0).long(),
                "segment_ids": segment_ids, "position_ids": position_ids}
