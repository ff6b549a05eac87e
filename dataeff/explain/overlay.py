"""Attributions drawn over an image, as base64 PNGs a page embeds (the MLflow UI shows the page as
one file): each patch tinted green (towards the predicted class) or red (against it), as strongly
as its attribution relative to the image's largest."""

from __future__ import annotations

import base64
import io

import torch
from PIL import Image

SIDE = 192  # pixels on the page, whatever the model's image size
STRONGEST = 0.6  # the opacity of the most attributed patch's tint


def tint(scores: torch.Tensor, side: int) -> Image.Image:
    """The patch grid as an RGBA layer of `side` pixels."""
    scale = float(scores.abs().max())
    alpha = (scores.abs() / scale if scale > 0 else torch.zeros_like(scores)) * STRONGEST * 255
    positive = (scores >= 0).float()
    layer = torch.stack([(1 - positive) * 200, positive * 150, torch.zeros_like(scores), alpha])
    layer = layer.round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(layer, "RGBA").resize((side, side), Image.NEAREST)


def as_png(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def overlay_png(pixels: torch.Tensor, scores: torch.Tensor) -> str:
    """`pixels`: uint8 (3, H, W); `scores`: the patch grid's attributions."""
    image = Image.fromarray(pixels.permute(1, 2, 0).numpy(), "RGB").resize((SIDE, SIDE), Image.NEAREST)
    return as_png(Image.alpha_composite(image.convert("RGBA"), tint(scores.float(), SIDE)))


def heatmap_png(scores: torch.Tensor) -> str:
    """A patch grid's attributions alone, on white."""
    white = Image.new("RGBA", (SIDE, SIDE), (255, 255, 255, 255))
    return as_png(Image.alpha_composite(white, tint(scores.float(), SIDE)))
