"""What every contestant records: step end times and the token positions of each step's batch."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch


class Record:
    """Step end times and token counts, written as JSON for the parent."""

    def __init__(self, device: str):
        self.device, self.ends, self.real, self.positions = device, [], [], []

    def batch(self, batch: dict) -> None:
        self.real.append(int(batch["attention_mask"].sum()))
        self.positions.append(int(batch["attention_mask"].numel()))

    def step_end(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()  # a step has ended when the GPU is done with it
        self.ends.append(time.perf_counter())

    def save(self, path: str) -> None:
        Path(path).write_text(json.dumps({"ends": self.ends, "real": self.real,
                                          "positions": self.positions}))
