"""Image augmentation: a torchvision.transforms.v2 pipeline from config, for training images only.

Each step is a Hydra node (`_target_: torchvision.transforms.v2.RandomResizedCrop`, ...), so any v2
transform and argument is available; v2 transforms take uint8 tensors and PIL images alike.
"""

from __future__ import annotations

import torch
from hydra.utils import instantiate
from torchvision.transforms import v2


def image_pipeline(steps) -> v2.Compose | None:
    """The configured steps, in order (a dict keeps its order; null steps are switched off)."""
    nodes = list(steps.values()) if hasattr(steps, "values") else list(steps or [])
    # Hydra has usually built the steps already (recursive instantiation); plain nodes are built here
    transforms = [node if callable(node) else instantiate(node) for node in nodes if node is not None]
    return v2.Compose(transforms) if transforms else None


class SeededTransform:
    """Apply `transform` with a seed derived from (seed, epoch, index): the same augmentation
    for the same example and epoch in any DataLoader worker, a fresh one each epoch."""

    def __init__(self, transform, seed: int):
        self.transform, self.seed = transform, seed

    def __call__(self, image: torch.Tensor, epoch: int, index: int) -> torch.Tensor:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(hash((self.seed, epoch, index)) % 2**63)
            return self.transform(image)
