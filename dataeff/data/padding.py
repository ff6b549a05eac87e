"""Padding sequences into a batch: to the longest of the batch (the least work), or to a fixed
length, so that every batch has the shape a compiled model was built for (`task.compile`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_batch(sequences: list[torch.Tensor], value: int, length: int | None = None) -> torch.Tensor:
    """(batch, longest) or, with `length`, (batch, length): `sequences` one after another, padded with
    `value` at the end."""
    batch = torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True, padding_value=value)
    return batch if length is None else F.pad(batch, (0, length - batch.shape[1]), value=value)
