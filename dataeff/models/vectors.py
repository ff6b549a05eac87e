"""Texts through an encoder in batches of similar length, on the GPU when there is one: a
classifier's probabilities (active learning) or a pretrained encoder's sentence vectors (a
diverse start, the audit's features)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModel

from dataeff.hf import load_local, model_folder
from dataeff.models.pooled import mean_pool
from dataeff.tokenizer import load_tokenizer


@dataclass
class Texts:
    """The texts to score (and their second sentences, for pairs), in pool order."""

    text: list[str]
    pair: list[str] | None = None

    def __len__(self) -> int:
        return len(self.text)

    def take(self, positions) -> Texts:
        return Texts([self.text[i] for i in positions],
                     None if self.pair is None else [self.pair[i] for i in positions])


def length_order(texts: Texts) -> list[int]:
    return sorted(range(len(texts)), key=lambda i: len(texts.text[i]))


def in_batches(texts: Texts, batch_size: int, fn) -> torch.Tensor:
    """`fn` on batches of similar length (they pad little), results back in the texts' order."""
    order = length_order(texts)
    parts = [fn(texts.take(order[start:start + batch_size])) for start in range(0, len(order), batch_size)]
    return torch.cat(parts)[torch.argsort(torch.tensor(order))]


def encode(tokenizer, batch: Texts, max_length: int, device: torch.device):
    return tokenizer(batch.text, batch.pair, truncation=True, max_length=max_length, padding=True,
                     return_tensors="pt").to(device)


def autocast(device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


@torch.no_grad()
def encoder_vectors(folder: str | Path, texts: Texts, max_length: int = 128, batch_size: int = 256,
                    setting: str = "init.source") -> torch.Tensor:
    """Mean-pooled token vectors of a pretrained encoder (as it is, not fine-tuned): what a diverse
    first set is chosen on, and what the audit's label model reads; `setting` names the folder in
    errors."""
    folder = model_folder(folder, setting)
    encoder = load_local(AutoModel.from_pretrained, folder, setting).eval()
    tokenizer = load_tokenizer(folder)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    encoder.to(device)

    def vectors(batch: Texts) -> torch.Tensor:
        encoded = encode(tokenizer, batch, max_length, device)
        with autocast(device):
            hidden = encoder(**encoded).last_hidden_state
        return mean_pool(hidden.float(), encoded["attention_mask"]).cpu()

    return in_batches(texts, batch_size, vectors)
