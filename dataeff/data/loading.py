"""DataLoader settings that fit the hardware the Trainer runs on.

`data.num_workers=auto` (the default) makes batches in the training process on CPUs, where the
model's threads already use every core, and in worker processes on GPUs, where fetching,
augmenting and padding would otherwise sit between one step and the next. There the workers take
the cores the training process's CPU threads would (less one, for it): torch's thread count is
this job's share of the machine, which a joblib sweep (dataeff.launch) and Lightning's DDP
launcher (per rank) have already divided. On CUDA, batches are pinned so that Lightning's copy
to the device (non-blocking) overlaps the step.

Training does not depend on the number of workers: the samplers run in the training process,
random augmentation is keyed by (epoch, example), not by a worker's random state, and each loader
draws its workers' seeds from a generator of its own. (From the global one, every new pass over a
loader, which a loader without persistent workers makes every epoch and every validation, would
shift the random numbers of dropout.)
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.accelerators import CUDAAccelerator

AUTO_WORKERS_CAP = 8  # per loader: more rarely pays for batches of in-memory tensors


def loader_settings(num_workers: int | str, trainer: pl.Trainer | None) -> dict:
    """`num_workers`, `persistent_workers`, `pin_memory` and `generator` for a DataLoader under
    `trainer` (None outside a fit: the CPU settings). The generator follows the training seed."""
    on_gpu = trainer is not None and isinstance(trainer.accelerator, CUDAAccelerator)
    workers = num_workers
    if num_workers == "auto":
        workers = min(AUTO_WORKERS_CAP, max(1, torch.get_num_threads() - 1)) if on_gpu else 0
    return {"num_workers": workers, "persistent_workers": workers > 0, "pin_memory": on_gpu,
            "generator": torch.Generator().manual_seed(torch.initial_seed())}
