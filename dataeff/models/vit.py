"""ViT image encoders from a config preset or a local Hugging Face folder."""

from __future__ import annotations

from hydra.utils import instantiate
from transformers import AutoConfig, ViTConfig

from dataeff.errors import UserError
from dataeff.hf import load_local, model_folder


def vision_config(vision_cfg, image_size: int) -> ViTConfig:
    """The ViT config of the `vision` preset (or of `vision.pretrained`), checked against the data."""
    if vision_cfg.get("pretrained"):
        folder = model_folder(vision_cfg.pretrained, "vision.pretrained")
        config = load_local(AutoConfig.from_pretrained, folder, "vision.pretrained")
        config = getattr(config, "vision_config", config)  # CLIP-style composite checkpoints
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


def pretrained_vit_weights(vision_cfg) -> dict:
    """The `vit.`-prefixed encoder weights of `vision.pretrained`, or {} for a preset."""
    if not vision_cfg.get("pretrained"):
        return {}
    from transformers import ViTModel

    model = load_local(ViTModel.from_pretrained, model_folder(vision_cfg.pretrained, "vision.pretrained"),
                       "vision.pretrained", add_pooling_layer=False)
    return {f"vit.{key}": value for key, value in model.state_dict().items()}
