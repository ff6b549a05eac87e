"""What the explainer needs of a kind of example: read, predicted, attributed, and with some of
its units (tokens, image patches) deleted. `text.TextReader` and `image_text.ImageTextReader`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from dataeff.explain.attributions import Attributor


@dataclass
class PathSettings:
    """Integrated Gradients' path: where it starts and in how many steps."""
    steps: int
    baseline: str  # text: pad | mask
    image_baseline: str  # noise | blur | mean | black
    internal_batch_size: int


class Reader(ABC):
    modalities: tuple[str, ...]  # in the order attributions come: text, image

    def __init__(self, net: torch.nn.Module, path: PathSettings, batch_size: int = 16):
        self.net, self.path, self.batch_size = net.eval(), path, batch_size
        self.device = next(net.parameters()).device

    @abstractmethod
    def read(self, examples: Dataset) -> tuple[list, torch.Tensor]:
        """The examples as items this reader perturbs, and their labels (-1: none given)."""

    @abstractmethod
    def batch(self, items: list) -> dict[str, torch.Tensor]:
        """The net's inputs for some items, on its device."""

    @abstractmethod
    def attributor(self) -> Attributor: ...

    @abstractmethod
    def units(self, item, modality: str) -> torch.Tensor:
        """The positions of the units that may be deleted (not [CLS], [SEP], padding)."""

    @abstractmethod
    def without(self, item, modality: str, positions: torch.Tensor):
        """The item with those units deleted (tokens dropped, patches painted with the baseline's)."""

    @abstractmethod
    def names(self, item, modality: str) -> list[str]:
        """What the tables and the page call each unit (its token, `patch <row>,<column>`)."""

    def size(self, item, modality: str) -> int:
        """How many units the item has (its scores beyond are padding)."""
        return len(item[0]) if modality == "text" else len(self.units(item, modality))

    def picture(self, item, scores: dict[str, torch.Tensor]) -> str | None:
        """The item with its attributions drawn over it, as a base64 PNG (images only)."""
        return None

    @torch.no_grad()
    def probabilities(self, items: list) -> torch.Tensor:
        out = []
        for start in range(0, len(items), self.batch_size):
            logits = self.net(**self.batch(items[start:start + self.batch_size])).logits
            out.append(logits.float().softmax(-1).cpu())
        return torch.cat(out)

    def attribute(self, items: list, targets: torch.Tensor):
        """Per modality, each item's unit scores; per item, the convergence delta."""
        attributor = self.attributor()
        scores, deltas = {modality: [] for modality in self.modalities}, []
        for start in range(0, len(items), self.batch_size):
            part, aimed = items[start:start + self.batch_size], targets[start:start + self.batch_size]
            with torch.enable_grad():
                score, delta = attributor(self.batch(part), aimed.to(self.device))
            for modality, rows in score.items():
                scores[modality] += [row[:self.size(item, modality)].float().cpu()
                                     for row, item in zip(rows, part)]
            deltas.append(delta.float().cpu())
        return scores, torch.cat(deltas)
