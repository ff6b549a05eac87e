"""Token ids cached on disk by content: the jobs of a study tokenize each table once.

A cache entry is named by what determines it (the texts, the tokenizer, `max_length`), so any
job, on any label budget or seed, finds the entry another job wrote. Entries are written to a
temporary file and renamed, so jobs started together never read half a file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from dataeff.resources import save_whole
from dataeff.tokenizer import corpus_hash, tokenizer_hash

Tensors = dict[str, torch.Tensor]
VERSION = 2  # what an entry holds: 2 counts long texts (split for MLM, truncated for classification)


def cache_file(cache_dir: str | Path, kind: str, texts: list[str], tokenizer, max_length: int) -> Path:
    folder = Path(cache_dir) / "tokenized"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{kind}-v{VERSION}-{corpus_hash(texts)}-{tokenizer_hash(tokenizer)}-L{max_length}.pt"


def load_or_build(path: Path, build: Callable[[], Tensors]) -> Tensors:
    """The tensors saved at `path`, or `build()` saved there first."""
    if path.exists():
        return torch.load(path, weights_only=True)
    tensors = build()
    save_whole(tensors, path)
    return tensors


def take(ids: torch.Tensor, offsets: torch.Tensor,
         positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The sequences at `positions` of a flat (ids, offsets) store, as a new compact store."""
    starts, lengths = offsets[positions], offsets[positions + 1] - offsets[positions]
    new_offsets = torch.cat([torch.zeros(1, dtype=offsets.dtype), torch.cumsum(lengths, 0)])
    within = torch.arange(int(new_offsets[-1])) - torch.repeat_interleave(new_offsets[:-1], lengths)
    return ids[torch.repeat_interleave(starts, lengths) + within], new_offsets
