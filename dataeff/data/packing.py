"""Sequence packing for masked-LM pretraining: whole texts side by side in one row of
`max_length`, so a batch holds text instead of padding (short sentences padded to the longest of
their batch are about half padding).

A text is never cut: rows are filled first-fit from the texts in a seeded random order. Each
token carries the number of its text in the row (`segment_ids`, 0 for padding) and its position
within that text (`position_ids`), so the model attends within a text only and sees the same
positions as unpacked (`dataeff.models.bert.packed_attention_mask`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from dataeff.data.padding import pad_batch


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


class PackedTexts(Dataset):
    """Rows of whole texts from a `TokenizedTexts` (each text at most `max_length` tokens)."""

    def __init__(self, texts, max_length: int, seed: int = 0):
        self.texts = texts
        lengths = (texts.offsets[1:] - texts.offsets[:-1]).numpy()
        self.rows = pack(lengths, max_length, seed)
        self.fill = lengths.sum() / (len(self.rows) * max_length)  # real share of a full row

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> list[torch.Tensor]:
        return [self.texts[int(i)] for i in self.rows[index]]


class PackedCollator:
    """Rows of texts -> input_ids, attention_mask (real tokens), segment_ids and position_ids,
    padded to the longest row of the batch, or to `length`."""

    def __init__(self, pad_id: int, length: int | None = None):
        self.pad_id, self.length = pad_id, length

    def __call__(self, rows: list[list[torch.Tensor]]) -> dict[str, torch.Tensor]:
        ids = [torch.cat(texts) for texts in rows]
        segments = [torch.cat([torch.full((len(t),), n + 1) for n, t in enumerate(texts)]) for texts in rows]
        positions = [torch.cat([torch.arange(len(t)) for t in texts]) for texts in rows]
        segment_ids = pad_batch(segments, 0, self.length)
        return {"input_ids": pad_batch(ids, self.pad_id, self.length),
                "attention_mask": (segment_ids > 0).long(), "segment_ids": segment_ids,
                "position_ids": pad_batch(positions, 0, self.length)}
