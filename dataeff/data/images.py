"""Images decoded once: every distinct file is read, converted to 8-bit RGB, resized and kept as uint8.

Decoding up front finds every missing, corrupt or oversized file before training starts (named by
path), and makes epochs cost nothing but a lookup. Memory: 3 x size^2 bytes per distinct image.
Whatever the file holds (16-bit, palette, grey, alpha, CMYK, an animation's first frame), the
store holds 8-bit RGB; a file with more than `max_pixels` pixels is refused from its header,
before a byte of it is decoded (a 1 MB PNG can hold 20000 x 20000 pixels: 1.2 GB decoded).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms.v2 import functional as F

from dataeff.errors import UserError

log = logging.getLogger(__name__)
ON_BAD_IMAGE = ("fail", "skip")
MAX_PIXELS = 89_478_485  # Pillow's own warning threshold (about 0.25 GB as 8-bit RGB)
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L")


class TooLarge(ValueError):
    """An image whose header promises more pixels than the store's limit."""


class ImageStore:
    """uint8 tensors [3, size, size], looked up by path."""

    def __init__(self, size: int, on_bad_image: str = "fail", max_pixels: int = MAX_PIXELS):
        if on_bad_image not in ON_BAD_IMAGE:
            raise UserError(f"data.on_bad_image={on_bad_image!r} is not one of {ON_BAD_IMAGE}: fail stops at "
                            "the first unreadable image, skip drops its rows and counts them.")
        if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
            raise UserError(f"data.max_image_pixels={max_pixels!r} is not a number of pixels; use a positive "
                            f"whole number, e.g. data.max_image_pixels={MAX_PIXELS}.")
        self.size, self.on_bad_image, self.max_pixels = size, on_bad_image, max_pixels
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
            except (OSError, RuntimeError, ValueError, Image.DecompressionBombError) as err:
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
        image = decode_rgb8(path, self.max_pixels)
        return F.resize(image, [self.size, self.size], antialias=True)

    def stacked(self) -> torch.Tensor:
        return torch.stack(self.pixels) if self.pixels else torch.empty(0, 3, self.size, self.size,
                                                                        dtype=torch.uint8)


def decode_rgb8(path: str, max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """The image at `path` as a uint8 tensor [3, H, W], its size checked before decoding."""
    width, height, frames = header_size(path)
    if width * height > max_pixels:
        raise TooLarge(f"{width} x {height} = {width * height:,} pixels, more than data.max_image_pixels="
                       f"{max_pixels:,}: shrink the file, or raise the limit if you trust it")
    try:  # an animation: its first frame only (torchvision would decode every frame)
        image = decode_image(path, mode=ImageReadMode.RGB) if frames == 1 else pillow_rgb8(path)
    except RuntimeError:  # a format torchvision does not decode (BMP, TIFF): Pillow's
        image = pillow_rgb8(path)
    return F.to_dtype(image, torch.uint8, scale=True)  # 16-bit PNGs decode as uint16


def header_size(path: str) -> tuple[int, int, int]:
    """(width, height, frames) from the file's headers, no pixel decoded; Pillow's own bomb check
    is left to the caller's limit (it would refuse past twice its default, whatever the limit)."""
    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(path) as header:
            return (*header.size, getattr(header, "n_frames", 1))
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def pillow_rgb8(path: str) -> torch.Tensor:
    with Image.open(path) as image:
        if image.mode in SIXTEEN_BIT:  # Pillow's RGB conversion would clip, not scale
            grey = (np.asarray(image, dtype=np.uint32) // 257).astype(np.uint8)
            return torch.from_numpy(grey)[None].expand(3, -1, -1).contiguous()
        if image.mode in ("I", "F"):
            raise ValueError(f"its pixels are {'32-bit integers' if image.mode == 'I' else 'floats'}, whose "
                             "range says nothing about brightness; save it as an 8- or 16-bit image")
        return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).contiguous()


def _reason(path: str, err: Exception) -> str:
    if not Path(path).exists():
        return "no such file"
    if isinstance(err, TooLarge):
        return f"too large ({err})"
    return f"not a readable image ({err})"


def resolve(path: str, root: Path | None) -> str:
    """Relative image paths are relative to `root` (the manifest's folder unless configured)."""
    candidate = Path(path).expanduser()
    return str(candidate if candidate.is_absolute() or root is None else root / candidate)
