"""A tiny generated image-text task whose label needs both modalities.

Each image is a red or a blue square on a noisy background; each question asks "is the shape
red?" or "is the shape blue?"; the answer is yes when they agree. The text alone or the image
alone is at chance (the four combinations are balanced); together they decide the label.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from torchvision.io import write_png

COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220)}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_xor_task(folder: Path, n_train: int = 192, n_test: int = 64, size: int = 32, seed: int = 0):
    """Write images/ and train.csv, test.csv (columns image, text, label); return the folder."""
    generator = torch.Generator().manual_seed(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for split, count in (("train", n_train), ("test", n_test)):
        rows = ["image,text,label"]
        for i in range(count):
            colour = list(COLOURS)[i % 2]
            asked = list(COLOURS)[(i // 2) % 2]
            image = torch.randint(90, 160, (3, size, size), generator=generator, dtype=torch.uint8)
            x, y = torch.randint(0, size // 2, (2,), generator=generator).tolist()
            image[:, y:y + size // 2, x:x + size // 2] = torch.tensor(COLOURS[colour])[:, None, None]
            name = f"images/{split}-{i}.png"
            write_png(image, str(folder / name))
            rows.append(f"{name},is the shape {asked}?,{'yes' if colour == asked else 'no'}")
        (folder / f"{split}.csv").write_text("\n".join(rows) + "\n")
    return folder


def png_chunk(kind: bytes, data: bytes) -> bytes:
    checksum = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)


def write_png16(path: Path, pixels: np.ndarray) -> Path:
    """A 16-bit RGB PNG of `pixels` (uint16, H x W x 3), as scanners and HDR tools write them
    (Pillow cannot write one)."""
    height, width, _ = pixels.shape
    rows = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)  # 16 bits, RGB
    path.write_bytes(PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows))
                     + png_chunk(b"IEND", b""))
    return path


def write_png_claiming(path: Path, width: int, height: int) -> Path:
    """A small file whose PNG header claims `width` x `height` pixels: what a decompression bomb
    looks like before it is decoded (one colour compresses 400 million pixels into about 1 MB)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    path.write_bytes(PNG_SIGNATURE + png_chunk(b"IHDR", header) + pixels + png_chunk(b"IEND", b""))
    return path
