"""Integrated Gradients (Sundararajan et al. 2017) with captum's `LayerIntegratedGradients`: each
input unit's share of the predicted class's probability. Text is attributed at the token
embeddings, from a baseline where every text token is [PAD] (or [MASK]) and [CLS], [SEP] and
positions stay; images at the ViT's patch embeddings, from an image of uniform noise (by default),
the image blurred, or a plain image (data.image_mean, grey by default, or black); an image-text model at both
at once, on one path, so the two add up together. Why noise: from a plain image a ViT's layer norms
make the path jump near its start, where 32 steps miss it (convergence deltas of 0.3-1.6 measured on
a trained tiny ViT), and a blurred or plain image may already be the predicted class, leaving
nothing to attribute; noise has neither the scale nor any shape of the data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from captum.attr import LayerIntegratedGradients
from torchvision.transforms.functional import gaussian_blur

BASELINES = ("pad", "mask")
IMAGE_BASELINES = ("noise", "blur", "mean", "black")
TEXT_ARGS = ("attention_mask", "token_type_ids")  # what the net reads beside the token ids


@dataclass
class Arm:
    """One input of the net, attributed at one of its layers."""
    modality: str  # text | image
    key: str  # the input's name in a batch
    layer: torch.nn.Module
    baseline: Callable[[torch.Tensor], torch.Tensor]  # the input -> where its path starts


def token_baseline(tokenizer, baseline: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The input with its text tokens replaced: special tokens and padding stay as they are."""
    reference = tokenizer.pad_token_id if baseline == "pad" else tokenizer.mask_token_id
    kept = torch.tensor(sorted({tokenizer.cls_token_id, tokenizer.sep_token_id}))

    def replaced(input_ids: torch.Tensor) -> torch.Tensor:
        keep = torch.isin(input_ids, kept.to(input_ids.device))
        return torch.where(keep, input_ids, torch.full_like(input_ids, reference))
    return replaced


def image_baseline(kind: str, normalise: Callable[[torch.Tensor], torch.Tensor],
                   seed: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
    """Normalised images (N, 3, H, W) -> where their path starts: one image of uniform noise (the
    same for all, drawn with `seed`), each blurred (a Gaussian of a quarter of their side: the
    shapes gone, the colours kept), or one colour: data.image_mean (0) or black. `normalise`:
    pixels in [0, 1] as the data normalises them."""
    if kind == "noise":
        def noise(pixels: torch.Tensor) -> torch.Tensor:
            draw = torch.rand((1, *pixels.shape[1:]), generator=torch.Generator().manual_seed(seed))
            return normalise(draw).to(pixels).expand_as(pixels).contiguous()
        return noise
    if kind == "blur":
        def blurred(pixels: torch.Tensor) -> torch.Tensor:
            side = pixels.shape[-1]
            return gaussian_blur(pixels, [side // 2 * 2 + 1] * 2, [side / 4] * 2)
        return blurred
    value = torch.zeros(1, 3, 1, 1) if kind == "mean" else normalise(torch.zeros(1, 3, 1, 1))
    return lambda pixels: value.to(pixels).expand_as(pixels).contiguous()


class Attributor:
    """`__call__(batch, targets)`: per arm, each unit's attribution to the probability of `targets`
    (a token's or a patch's, summed over the embedding; padding 0), and per example the convergence
    delta (the attributions' sum minus the probability's change from the baseline: near 0 when
    `steps` suffice)."""

    def __init__(self, net: torch.nn.Module, arms: list[Arm], steps: int = 32, internal_batch_size: int = 64):
        self.net, self.arms, self.steps, self.internal_batch_size = net, arms, steps, internal_batch_size
        self.keys = [arm.key for arm in arms]
        self.extra = TEXT_ARGS if "input_ids" in self.keys else ()
        layers = [arm.layer for arm in arms]  # one layer is given alone: captum answers it with no list
        layer = layers[0] if len(arms) == 1 else layers
        self.attributor = LayerIntegratedGradients(self.probabilities, layer)

    def probabilities(self, *inputs) -> torch.Tensor:
        logits = self.net(**dict(zip([*self.keys, *self.extra], inputs))).logits
        return logits.float().softmax(-1)

    def __call__(self, batch: dict[str, torch.Tensor], targets: torch.Tensor):
        inputs = tuple(batch[key] for key in self.keys)
        attributions, delta = self.attributor.attribute(
            inputs=inputs, baselines=tuple(arm.baseline(batch[arm.key]) for arm in self.arms), target=targets,
            additional_forward_args=tuple(batch[key] for key in self.extra) or None,
            n_steps=self.steps, internal_batch_size=self.internal_batch_size, return_convergence_delta=True)
        if len(self.arms) == 1:
            attributions = [attributions]
        scores = {}
        for arm, attribution in zip(self.arms, attributions):
            score = attribution.sum(-1)
            if arm.key == "input_ids":
                score = score * batch["attention_mask"]  # padding attributes nothing
            scores[arm.modality] = score.detach()
        return scores, delta.detach()


def token_arm(net: torch.nn.Module, tokenizer, baseline: str = "pad") -> Arm:
    """A text classifier's tokens, at its input embeddings."""
    return Arm("text", "input_ids", net.get_input_embeddings(), token_baseline(tokenizer, baseline))
