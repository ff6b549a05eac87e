"""Labelled examples as token ids, and the collator that pads them into batches."""

from __future__ import annotations

import pandas as pd
import torch
from torch.utils.data import Dataset

from dataeff.data.order import split_key
from dataeff.data.text import TokenizedTexts
from dataeff.data.token_cache import Tensors, take


class LabelledExamples(Dataset):
    """Token ids, token type ids and an integer label per example; items are (ids, types, label)."""

    def __init__(self, ids: TokenizedTexts, types: TokenizedTexts, labels: torch.Tensor):
        self.ids, self.types, self.labels = ids, types, labels

    @classmethod
    def from_tokens(cls, tokens: Tensors, labels: torch.Tensor,
                    positions: torch.Tensor | None = None) -> LabelledExamples:
        """Examples from `encode_table`'s tensors, or from the rows at `positions` of them."""
        ids, types, offsets = tokens["ids"], tokens["types"], tokens["offsets"]
        if positions is not None:
            (ids, cut), (types, _) = take(ids, offsets, positions), take(types, offsets, positions)
            offsets = cut
        return cls(TokenizedTexts(ids, offsets), TokenizedTexts(types, offsets), labels)

    @classmethod
    def encode(cls, table: pd.DataFrame, tokenizer, max_length: int,
               label_ids: dict[str, int]) -> LabelledExamples:
        return cls.from_tokens(encode_table(table, tokenizer, max_length), label_tensor(table, label_ids))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key) -> tuple[torch.Tensor, torch.Tensor, int]:
        _, index = split_key(key)
        return self.ids[index], self.types[index], int(self.labels[index])

    def lengths(self) -> torch.Tensor:
        """Tokens per example."""
        return self.ids.offsets.diff()


def encode_table(table: pd.DataFrame, tokenizer, max_length: int) -> Tensors:
    """Token ids and type ids of every row (text, or text and pair), stored flat with offsets, cut
    to `max_length` (a classifier reads one window); `truncated` marks the rows that were cut."""
    texts, pairs = list(table["text"]), list(table["pair"]) if "pair" in table else None
    # asked for explicitly: transformers 5 fast tokenizers leave type ids out by default
    encoded = tokenizer(texts, pairs, truncation=True, max_length=max_length, return_token_type_ids=True)
    whole = tokenizer(texts, pairs, return_attention_mask=False, verbose=False)["input_ids"]
    ids, types = _flat(encoded["input_ids"]), _flat(encoded["token_type_ids"])
    truncated = torch.tensor([len(row) > max_length for row in whole], dtype=torch.bool)
    return {"ids": ids.ids, "types": types.ids, "offsets": ids.offsets, "truncated": truncated}


def label_tensor(table: pd.DataFrame, label_ids: dict[str, int]) -> torch.Tensor:
    return torch.tensor([label_ids[label] for label in table["label"]], dtype=torch.long)


def _flat(sequences: list[list[int]]) -> TokenizedTexts:
    """Many sequences as one flat tensor plus offsets: compact, and cheap to send to workers."""
    lengths = torch.tensor([0] + [len(seq) for seq in sequences])
    return TokenizedTexts(torch.tensor([i for seq in sequences for i in seq], dtype=torch.int32),
                          torch.cumsum(lengths, 0))


class LabelledCollator:
    """Pad ids (with [PAD]) and token types (with 0) to the longest example of the batch."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch: list[tuple[torch.Tensor, torch.Tensor, int]]) -> dict[str, torch.Tensor]:
        ids, types, labels = zip(*batch)
        pad = torch.nn.utils.rnn.pad_sequence
        input_ids = pad(list(ids), batch_first=True, padding_value=self.pad_id)
        lengths = torch.tensor([len(seq) for seq in ids])
        # from the lengths, not ids != pad: a text may itself contain the [PAD] token
        mask = (torch.arange(input_ids.shape[1]) < lengths[:, None]).long()
        return {"input_ids": input_ids, "attention_mask": mask,
                "token_type_ids": pad(list(types), batch_first=True, padding_value=0),
                "labels": torch.tensor(labels, dtype=torch.long)}


class PairCollator:
    """Both sides of B pairs as one padded batch of 2B texts (the first sides, then the second),
    and `similarity`, the B targets."""

    def __init__(self, pad_id: int):
        self.texts = LabelledCollator(pad_id)

    def __call__(self, batch: list[tuple[tuple, tuple, float]]) -> dict[str, torch.Tensor]:
        firsts, seconds, similarity = zip(*batch)
        texts = self.texts(list(firsts) + list(seconds))
        del texts["labels"]
        return {**texts, "similarity": torch.tensor(similarity, dtype=torch.float)}
