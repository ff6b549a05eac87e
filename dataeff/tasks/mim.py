"""Self-supervised pretraining of a ViT on unlabelled images, the image side of task=mlm.

`method=masked` is SimMIM (Xie et al. 2022): a share of the patches is replaced by a learned mask
token and the model reconstructs their pixels (L1 on the masked patches, transformers'
`ViTForMaskedImageModeling`). `method=denoise`: Gaussian noise of `noise_std` (in the normalised
pixel space) is added to every pixel and the model reconstructs the clean image (mean squared
error). Validation draws its masks and noise from a generator seeded by the batch index, so
val/loss compares like with like across validations and runs.
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.loggers import MLFlowLogger
from torchvision.utils import make_grid, save_image

from dataeff.errors import UserError
from dataeff.tasks.base import Task

METHODS = ("masked", "denoise")


class MIMTask(Task):
    def __init__(self, net, tokenizer, optimizer, scheduler=None, method: str = "masked",
                 mask_ratio: float = 0.6, noise_std: float = 0.5, name: str = "mim",
                 objective: str = "val/loss", objective_mode: str = "min"):
        if method not in METHODS:
            raise UserError(f"task.method={method!r} is not one of {', '.join(METHODS)}: masked reconstructs "
                            "masked patches (SimMIM), denoise reconstructs the image under Gaussian noise.")
        if not 0 < mask_ratio < 1:
            raise UserError(f"task.mask_ratio={mask_ratio} is the share of patches masked: between 0 and 1.")
        if noise_std <= 0:
            raise UserError(f"task.noise_std={noise_std} must be positive (the noise's standard deviation).")
        super().__init__(net, tokenizer, optimizer, scheduler)
        self.save_hyperparameters(ignore=["net", "tokenizer", "optimizer", "scheduler"], logger=False)
        if method == "denoise":  # no patch is masked: a mask token without a gradient stops DDP
            net.vit.embeddings.mask_token.requires_grad_(False)

    def forward(self, pixel_values: torch.Tensor, generator: torch.Generator | None = None):
        """(loss, what the model saw, its reconstruction) for a batch of normalised images; for
        `masked`, the reconstruction shows the visible patches as given (as MAE's figures do):
        only the masked ones are the model's, and only they count in the loss."""
        if self.hparams.method == "masked":
            patches = self.patch_mask(pixel_values, generator)
            out = self.net(pixel_values=pixel_values, bool_masked_pos=patches)
            masked = self.pixel_mask(patches)
            seen = pixel_values.masked_fill(masked, 0.0)
            shown = torch.where(masked, out.reconstruction.to(pixel_values.dtype), pixel_values)
            return out.loss, seen, shown
        noise = torch.randn(pixel_values.shape, generator=generator, device=pixel_values.device)
        noisy = pixel_values + self.hparams.noise_std * noise.to(pixel_values.dtype)
        reconstruction = self.net(pixel_values=noisy).reconstruction
        return F.mse_loss(reconstruction.float(), pixel_values.float()), noisy, reconstruction

    def patch_mask(self, pixel_values: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """(batch, patches) booleans: exactly round(mask_ratio x patches) masked in every image."""
        config = self.net.config
        patches = (config.image_size // config.patch_size) ** 2
        scores = torch.rand(len(pixel_values), patches, generator=generator, device=pixel_values.device)
        ranks = scores.argsort(dim=1).argsort(dim=1)
        return ranks < round(self.hparams.mask_ratio * patches)

    def pixel_mask(self, mask: torch.Tensor) -> torch.Tensor:
        side, patch = self.net.config.image_size // self.net.config.patch_size, self.net.config.patch_size
        grid = mask.reshape(-1, side, side)
        return grid.repeat_interleave(patch, 1).repeat_interleave(patch, 2).unsqueeze(1)

    def fixed(self, batch_idx: int, device: torch.device) -> torch.Generator:
        return torch.Generator(device=device).manual_seed(batch_idx)

    def training_step(self, batch, batch_idx):
        loss, _, _ = self(batch["pixel_values"])
        self.log("train/loss", loss, batch_size=len(batch["pixel_values"]))
        return loss

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, batch_idx, "test")

    def _evaluate(self, batch, batch_idx: int, split: str) -> None:
        pixels = batch["pixel_values"]
        loss, _, _ = self(pixels, self.fixed(batch_idx, pixels.device))
        self.log(f"{split}/loss", loss, sync_dist=True, batch_size=len(pixels))

    @torch.no_grad()
    def samples(self, pixel_values: torch.Tensor, count: int = 8) -> torch.Tensor:
        """A (3, H, W) grid in normalised pixels: the first `count` images, what the model saw
        (masked or noisy, as validation draws them) and its reconstruction, a row each."""
        pixels = pixel_values[:count]
        _, seen, reconstruction = self(pixels, self.fixed(0, pixels.device))
        rows = torch.cat([pixels, seen, reconstruction]).float().cpu()
        return make_grid(rows, nrow=len(pixels), padding=2)


class ReconstructionSamples(pl.Callback):
    """Each validation, `reconstructions/step_<step>.png` in the run (and in `dirpath`): the first
    validation images, what the model saw and what it made of them (`MIMTask.samples`)."""

    def __init__(self, dirpath: str, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)):
        self.dirpath = Path(dirpath)
        self.mean = torch.tensor(list(mean)).view(3, 1, 1)
        self.std = torch.tensor(list(std)).view(3, 1, 1)

    def on_validation_batch_end(self, trainer, pl_module: MIMTask, outputs, batch, batch_idx,
                                dataloader_idx=0):
        if batch_idx or trainer.sanity_checking:
            return
        # on every rank: the forward of a sharded model (FSDP) is a collective
        grid = pl_module.samples(batch["pixel_values"]) * self.std + self.mean
        if not trainer.is_global_zero:
            return
        self.dirpath.mkdir(parents=True, exist_ok=True)
        path = self.dirpath / f"step_{trainer.global_step:06d}.png"
        save_image(grid.clamp(0, 1), path)
        if isinstance(trainer.logger, MLFlowLogger) and trainer.logger.run_id:
            trainer.logger.experiment.log_artifact(trainer.logger.run_id, str(path), "reconstructions")
