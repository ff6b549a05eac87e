"""What a network is built for, read from its data: the classes it predicts, the size of the images
it sees, and the data set's name for messages. Net builders (`task.net`) take this, not the data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataShape:
    name: str
    label_names: tuple[str, ...] = ()
    image_size: int | None = None  # the side of the square images, when there are images
