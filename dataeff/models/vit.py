"""ViT image encoders from a config preset or a local Hugging Face folder."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import OmegaConf
from transformers import (
    AutoConfig,
    VisionTextDualEncoderConfig,
    VisionTextDualEncoderModel,
    ViTConfig,
    ViTForMaskedImageModeling,
    ViTModel,
)
from transformers.utils import logging as hf_logging

from dataeff.errors import UserError
from dataeff.hf import load_local, model_folder
from dataeff.models.shape import DataShape


def vision_config(vision_cfg, image_size: int) -> ViTConfig:
    """The ViT config of the `vision` preset (or of `vision.pretrained`), checked against the data."""
    check_fetched(vision_cfg)
    if vision_cfg.get("pretrained"):
        folder = model_folder(vision_cfg.pretrained, "vision.pretrained")
        config = load_local(AutoConfig.from_pretrained, folder, "vision.pretrained")
        if isinstance(config, VisionTextDualEncoderConfig):  # task=contrastive's export: its image tower
            config = config.vision_config
    else:
        config = instantiate(vision_cfg.config)
    if config.image_size % config.patch_size:
        raise UserError(f"A {config.image_size}px image cannot be cut into {config.patch_size}px patches; "
                        f"set vision.config.image_size to a multiple of {config.patch_size} (or change "
                        "vision.config.patch_size).")
    if image_size != config.image_size:
        raise UserError(f"The data is resized to {image_size}px but the ViT expects "
                        f"{config.image_size}px; set data.image_size={config.image_size}.")
    config._attn_implementation = "sdpa"
    return config


def check_fetched(vision_cfg) -> None:
    """`vision/init=mim | denoise | mlflow_run` name runs, which a dataeff-train job's stages turn
    into a folder (vision.pretrained) before anything is built; outside one the ViT would start
    random under a pretrained name."""
    init = vision_cfg.get("init") or {}
    if init.get("kind") in ("pretrain", "mlflow_run"):
        raise UserError(f"vision/init={init.get('name')} names a run, which only a dataeff-train job trains "
                        "or fetches (its stages put the run's hf_model/ folder in the cache); outside one, "
                        "set vision.pretrained=<that folder>.")


def pretrained_vit_weights(vision_cfg) -> tuple[dict, dict | None]:
    """The `vit.`-prefixed encoder weights of `vision.pretrained` (a ViT folder, or an image-text
    dual encoder's, whose image tower it takes) and what was loaded (the report init_report.json
    keeps), or ({}, None) for a preset. A folder that lacks encoder weights is refused:
    transformers would fill them in at random and say so only in a warning."""
    if not vision_cfg.get("pretrained"):
        return {}, None
    source = model_folder(vision_cfg.pretrained, "vision.pretrained")
    config = load_local(AutoConfig.from_pretrained, source, "vision.pretrained")
    if isinstance(config, VisionTextDualEncoderConfig):  # task=contrastive's export: its vision_model
        weights, missing, unexpected = image_tower(source)
    else:
        weights, missing, unexpected = vit_encoder(source)
    if missing:
        raise UserError(f"{source} lacks {len(missing)} ViT encoder weight(s), e.g. {missing[0]}, which "
                        "would start random under a pretrained name; point vision.pretrained at a complete "
                        "ViT folder, or use a vision preset (vision=vit_tiny) to train one.")
    weights = {f"vit.{key}": value for key, value in weights.items()}
    run_id = OmegaConf.select(vision_cfg, "init.source_run_id", default=None)  # vision/init=mim, ...
    return weights, {"source": str(source), "source_run_id": run_id, "loaded": sorted(weights),
                     "missing": [], "unexpected": unexpected}


def vit_encoder(source: Path) -> tuple[dict, list[str], list[str]]:
    """A ViT folder's encoder weights (a MIM run's too: its decoder and mask token are left out)."""
    with quiet_load_report():  # it warns of the MIM decoder, which init_report.json lists
        model, info = load_local(ViTModel.from_pretrained, source, "vision.pretrained",
                                 add_pooling_layer=False, output_loading_info=True)
    return model.state_dict(), sorted(info["missing_keys"]), sorted(info["unexpected_keys"])


def image_tower(source: Path) -> tuple[dict, list[str], list[str]]:
    """A dual encoder's image tower (`vision_model`) as a ViTModel without pooler names its weights;
    its pooler is reported unexpected (a fusion ViT pools by mean)."""
    with quiet_load_report():
        model, info = load_local(VisionTextDualEncoderModel.from_pretrained, source, "vision.pretrained",
                                 output_loading_info=True)
    tower = model.vision_model.state_dict()
    missing = sorted(key.removeprefix("vision_model.") for key in info["missing_keys"]
                     if key.startswith("vision_model.") and ".pooler." not in f".{key}")
    return ({key: value for key, value in tower.items() if not key.startswith("pooler.")}, missing,
            sorted(f"vision_model.{key}" for key in tower if key.startswith("pooler.")))


@contextlib.contextmanager
def quiet_load_report() -> Iterator[None]:
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)


def masked_image_net(model_cfg, tokenizer, data: DataShape, pretrained=None, vision=None):
    """`task.net` for task=mim: the `vision` ViT with SimMIM's light decoder (a 1x1 convolution and
    a pixel shuffle from patches back to pixels), transformers' `ViTForMaskedImageModeling`. Its
    `vit` is the encoder a fusion run loads from the exported folder (`vision=pretrained`);
    `vision.pretrained` continues pretraining a ViT. `model_cfg`, `tokenizer` and `pretrained`
    (the text side) are unused: the signature every `task.net` shares."""
    config = vision_config(vision, data.image_size)
    config.encoder_stride = config.patch_size  # the decoder upsamples each patch back to its pixels
    model = ViTForMaskedImageModeling(config)
    weights, report = pretrained_vit_weights(vision)
    model.load_state_dict(weights, strict=False)  # all of the encoder, or nothing (a preset)
    return model, ({"vision": report} if report is not None else {})
