"""Learning-rate schedules that read the run's length from the Trainer, and gradient clipping that
works under every strategy."""

from __future__ import annotations

import math

from torch.distributed.fsdp import FullyShardedDataParallel
from torch.optim.lr_scheduler import LambdaLR


def warmup_then_linear_decay(optimizer, num_training_steps: float, warmup_ratio: float = 0.1,
                             final_ratio: float = 0.0) -> LambdaLR:
    """Linear warm-up over `warmup_ratio` of the run, then linear decay to `final_ratio` x lr.
    An unbounded run (no max_steps/max_epochs) warms up over 1000 steps and stays constant."""
    if math.isinf(num_training_steps):
        return LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 1000))
    total = max(1, int(num_training_steps))
    warmup = max(1, int(warmup_ratio * total))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 1.0 - (1.0 - final_ratio) * progress

    return LambdaLR(optimizer, factor)


def optimizer_and_schedule(module) -> dict:
    """Lightning's optimizer config from the task's `optimizer`/`scheduler` partials."""
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = module.optimizer_factory(params=params)
    if module.scheduler_factory is None:
        return {"optimizer": optimizer}
    scheduler = module.scheduler_factory(optimizer=optimizer, num_training_steps=module.schedule_steps())
    return {"optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "train/lr"}}


def clip_gradients(module, optimizer, clip_val: float | None, algorithm: str | None) -> None:
    """Lightning's clipping, except under FSDP, whose precision plugin refuses clipping by norm:
    there FSDP's own `clip_grad_norm_` takes the norm over every rank's shard."""
    model = module.trainer.strategy.model
    if clip_val and algorithm in (None, "norm") and isinstance(model, FullyShardedDataParallel):
        model.clip_grad_norm_(clip_val)
    else:
        module.clip_gradients(optimizer, gradient_clip_val=clip_val, gradient_clip_algorithm=algorithm)
