"""An image-text (or image-only) classifier's examples for the explainer (task=fusion): the text
attributed at its token embeddings and the image at the ViT's patch embeddings on one path; a
patch is deleted by painting it with the baseline image's patch (noise, blurred, or one colour). And each
predicted class's mean attribution per patch, where a shortcut in the pixels (a corner) shows."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from torch.utils.data import Dataset

from dataeff.data.examples import LabelledCollator
from dataeff.explain.attributions import Arm, Attributor, image_baseline, token_baseline
from dataeff.explain.faithfulness import without
from dataeff.explain.overlay import overlay_png
from dataeff.explain.reader import PathSettings, Reader
from dataeff.models.fusion import FusionModel

Item = tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor]  # token ids, types, pixel values


@dataclass
class Normalisation:
    """How the data normalised its images (data.image_mean, data.image_std)."""
    mean: list[float]
    std: list[float]

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, H, W) in [0, 1], normalised."""
        return (pixels - torch.tensor(self.mean).view(1, 3, 1, 1)) / torch.tensor(self.std).view(1, 3, 1, 1)

    def uint8(self, pixels: torch.Tensor) -> torch.Tensor:
        unnormalised = pixels * torch.tensor(self.std).view(3, 1, 1) + torch.tensor(self.mean).view(3, 1, 1)
        return unnormalised.clamp(0, 1).mul(255).round().to(torch.uint8)


class ImageTextReader(Reader):
    def __init__(self, net: FusionModel, tokenizer, normalisation: Normalisation, path: PathSettings,
                 batch_size: int = 16, seed: int = 0):
        super().__init__(net, path, batch_size)
        self.tokenizer, self.normalisation = tokenizer, normalisation
        self.modalities = tuple(m for m, arm in (("text", net.bert), ("image", net.vit)) if arm is not None)
        self.collate = LabelledCollator(tokenizer.pad_token_id) if "text" in self.modalities else None
        vision = net.config.vision_config
        self.grid, self.patch = vision.image_size // vision.patch_size, vision.patch_size
        self.baseline = image_baseline(path.image_baseline, normalisation, seed)

    def read(self, examples: Dataset) -> tuple[list[Item], torch.Tensor]:
        items, labels = [], []
        for index in range(len(examples)):
            ids, types, image, label = examples[index]
            text = (ids, types) if "text" in self.modalities else (None, None)
            items.append((*text, self.normalisation(image[None].float() / 255)[0]))
            labels.append(label)
        return items, torch.tensor(labels)

    def batch(self, items: list[Item]) -> dict[str, torch.Tensor]:
        batch = {"pixel_values": torch.stack([pixels for *_, pixels in items])}
        if self.collate is not None:
            text = self.collate([(ids, types, 0) for ids, types, _ in items])
            batch |= {key: value for key, value in text.items() if key != "labels"}
        return {key: value.to(self.device) for key, value in batch.items()}

    def attributor(self) -> Attributor:
        net, arms = self.net, []
        if "text" in self.modalities:
            words = net.bert.embeddings.word_embeddings
            arms.append(Arm("text", "input_ids", words, token_baseline(self.tokenizer, self.path.baseline)))
        if "image" in self.modalities:
            patches = net.vit.embeddings.patch_embeddings
            arms.append(Arm("image", "pixel_values", patches, self.baseline))
        return Attributor(net, arms, self.path.steps, self.path.internal_batch_size)

    def units(self, item: Item, modality: str) -> torch.Tensor:
        if modality == "image":
            return torch.arange(self.grid * self.grid)
        special = torch.tensor(self.tokenizer.all_special_ids)
        return torch.nonzero(~torch.isin(item[0], special)).flatten()

    def without(self, item: Item, modality: str, positions: torch.Tensor) -> Item:
        ids, types, pixels = item
        if modality == "text":
            return (*without((ids, types), positions), pixels)
        painted, baseline = pixels.clone(), self.baseline(pixels[None])[0]
        for position in positions.tolist():
            row, column = divmod(position, self.grid)
            rows = slice(row * self.patch, (row + 1) * self.patch)
            columns = slice(column * self.patch, (column + 1) * self.patch)
            painted[:, rows, columns] = baseline[:, rows, columns]
        return ids, types, painted

    def names(self, item: Item, modality: str) -> list[str]:
        if modality == "image":
            return [f"patch {row},{column}" for row in range(self.grid) for column in range(self.grid)]
        return self.tokenizer.convert_ids_to_tokens(item[0].tolist())

    def picture(self, item: Item, scores: dict[str, torch.Tensor]) -> str | None:
        if "image" not in scores:
            return None
        return overlay_png(self.normalisation.uint8(item[2]), scores["image"].view(self.grid, self.grid))


def class_patches(table: pd.DataFrame) -> pd.DataFrame:
    """Per predicted class and patch, the mean attribution over the attributed images."""
    patches = table[table["modality"] == "image"]
    stats = patches.groupby(["predicted", "position", "token"], as_index=False).agg(
        mean_attribution=("attribution", "mean"), count=("example", "nunique"))
    return stats.rename(columns={"token": "patch"})
