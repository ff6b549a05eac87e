"""Images of image(-text) data: the unreadable ones, copies by perceptual hash (pHash: the same
picture resized, re-encoded or slightly edited has a hash a few bits away) and the sizes."""

from __future__ import annotations

import imagehash
import numpy as np
import pandas as pd
from PIL import Image


def read_images(tables: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(every readable image: split, row, path, width, height, hash; every unreadable one: split,
    row, path, reason)."""
    seen, bad, cache = [], [], {}
    for split, table in tables.items():
        for row, path in zip(table.index, table["image"]):
            if path not in cache:
                cache[path] = describe(path)
            found = cache[path]
            if isinstance(found, str):
                bad.append({"split": split, "row": row, "path": path, "reason": found})
            else:
                seen.append({"split": split, "row": row, "path": path, **found})
    return (pd.DataFrame(seen, columns=["split", "row", "path", "width", "height", "hash"]),
            pd.DataFrame(bad, columns=["split", "row", "path", "reason"]))


def describe(path: str) -> dict | str:
    """Size and pHash of a readable image, or why it cannot be read."""
    try:
        with Image.open(path) as image:
            image.load()
            return {"width": image.width, "height": image.height,
                    "hash": int(str(imagehash.phash(image)), 16)}
    except FileNotFoundError:
        return "no such file"
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        return f"not a readable image ({type(err).__name__}: {err})"


def image_copies(images: pd.DataFrame, max_distance: int = 4) -> pd.DataFrame:
    """Pairs of examples whose images are at most `max_distance` bits apart in pHash (0: the same
    picture), other than one file used twice within a split: split_a, row_a, split_b, row_b,
    distance, paths."""
    hashes = images["hash"].to_numpy(dtype=np.uint64)
    rows = []
    for start in range(0, len(hashes), 1024):  # a block of rows against all later ones
        block = hashes[start:start + 1024, None] ^ hashes[None, :]
        distances = np.bitwise_count(block)
        for i, j in zip(*np.nonzero(distances <= max_distance)):
            a, b = start + i, j
            same_file = images.at[a, "path"] == images.at[b, "path"]
            if b <= a or (same_file and images.at[a, "split"] == images.at[b, "split"]):
                continue  # one file used by several examples of a split is no copy; across splits it is
            rows.append({"split_a": images.at[a, "split"], "row_a": images.at[a, "row"],
                         "split_b": images.at[b, "split"], "row_b": images.at[b, "row"],
                         "distance": int(distances[i, j]), "path_a": images.at[a, "path"],
                         "path_b": images.at[b, "path"]})
    return pd.DataFrame(rows, columns=["split_a", "row_a", "split_b", "row_b", "distance", "path_a",
                                       "path_b"])


def image_sizes(images: pd.DataFrame) -> pd.DataFrame:
    """Per split: how many images, and the range of widths and heights."""
    grouped = images.groupby("split", sort=False)
    return pd.DataFrame({"images": grouped.size(), "min_width": grouped["width"].min(),
                         "max_width": grouped["width"].max(), "min_height": grouped["height"].min(),
                         "max_height": grouped["height"].max()}).reset_index()
