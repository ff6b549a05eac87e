"""Images decoded once: every distinct file is read, converted to RGB, resized and kept as uint8.

Decoding up front finds every missing or corrupt file before training starts (named by path),
and makes epochs cost nothing but a lookup. Memory: 3 x size^2 bytes per distinct image.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms.v2 import functional as F

from dataeff.errors import UserError

log = logging.getLogger(__name__)
ON_BAD_IMAGE = ("fail", "skip")


class ImageStore:
    """uint8 tensors [3, size, size], looked up by path."""

    def __init__(self, size: int, on_bad_image: str = "fail"):
        if on_bad_image not in ON_BAD_IMAGE:
            raise UserError(f"data.on_bad_image={on_bad_image!r} is not one of {ON_BAD_IMAGE}: fail stops at "
                            "the first unreadable image, skip drops its rows and counts them.")
        self.size, self.on_bad_image = size, on_bad_image
        self.index: dict[str, int] = {}
        self.pixels: list[torch.Tensor] = []
        self.skipped: list[str] = []

    def add(self, paths: Sequence[str], where: str) -> list[bool]:
        """Decode the new paths; return, per path, whether it is usable (False only when skipping)."""
        bad = {}
        for path in dict.fromkeys(paths):
            if path in self.index or path in bad:
                continue
            try:
                self.index[path] = len(self.pixels)
                self.pixels.append(self._decode(path))
            except (OSError, RuntimeError, ValueError) as err:
                del self.index[path]
                bad[path] = err
        if bad and self.on_bad_image == "fail":
            path, err = next(iter(bad.items()))
            raise UserError(f"{len(bad)} image(s) of the {where} data cannot be read, e.g. {path}: "
                            f"{_reason(path, err)}. Fix or remove them, or set data.on_bad_image=skip to "
                            "drop their rows (they are counted in the run's tags).")
        if bad:
            log.warning("Skipping %d unreadable image(s) of the %s data, e.g. %s", len(bad), where,
                        next(iter(bad)))
            self.skipped.extend(bad)
        return [path in self.index for path in paths]

    def _decode(self, path: str) -> torch.Tensor:
        image = decode_image(path, mode=ImageReadMode.RGB)
        return F.resize(image, [self.size, self.size], antialias=True)

    def stacked(self) -> torch.Tensor:
        return torch.stack(self.pixels) if self.pixels else torch.empty(0, 3, self.size, self.size,
                                                                        dtype=torch.uint8)


def _reason(path: str, err: Exception) -> str:
    return "no such file" if not Path(path).exists() else f"not a readable image ({err})"


def resolve(path: str, root: Path | None) -> str:
    """Relative image paths are relative to `root` (the manifest's folder unless configured)."""
    candidate = Path(path).expanduser()
    return str(candidate if candidate.is_absolute() or root is None else root / candidate)
