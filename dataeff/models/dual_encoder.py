"""The image-text dual encoder of task=contrastive: the `vision` ViT and the `model` BERT, each with
a linear projection into one embedding space and a learnable temperature (CLIP, Radford et al.
2021), as transformers' `VisionTextDualEncoderModel`, so the exported folder loads with its
`from_pretrained` and each tower is a plain ViT / BERT."""

from __future__ import annotations

from dataclasses import replace

from transformers import BertConfig, VisionTextDualEncoderConfig, VisionTextDualEncoderModel

from dataeff.errors import UserError
from dataeff.models.bert import label_maps, text_config
from dataeff.models.init import Pretrained, load_encoder
from dataeff.models.pooled import config_as
from dataeff.models.shape import DataShape
from dataeff.models.vit import pretrained_vit_weights, vision_config


def dual_encoder_net(model_cfg, tokenizer, data: DataShape, pretrained: Pretrained | None = None,
                     vision=None, projection_dim: int = 64, logit_scale_init: float = 2.6592):
    """`task.net` for task=contrastive. `init=...` starts the text tower, `vision.pretrained` (or
    `vision/init`) the ViT; the projections and the temperature start fresh. The temperature
    starts at 1/0.07 (exp of `logit_scale_init`), CLIP's."""
    if tokenizer is None:
        raise UserError(f"task=contrastive pairs images with texts, and data={data.name} has no text column; "
                        "set data.text_column=<the caption column> (data=easyvqa_captions pairs easy-VQA's "
                        "pictures with captions).")
    text = config_as(text_config(model_cfg, tokenizer, pretrained), BertConfig)
    config = VisionTextDualEncoderConfig.from_vision_text_configs(
        vision_config(vision, data.image_size), text, projection_dim=projection_dim,
        logit_scale_init_value=logit_scale_init, **label_maps(list(data.label_names)))  # for zero-shot
    model = VisionTextDualEncoderModel(config=config)
    reports = {}
    vit_weights, reports["vision"] = pretrained_vit_weights(vision)
    tower = {f"vision_model.{key.removeprefix('vit.')}": value for key, value in vit_weights.items()}
    result = model.load_state_dict(tower, strict=False)
    if result.unexpected_keys:  # the report would list them as loaded
        raise UserError(f"{vision.pretrained}: {result.unexpected_keys[0]} has no place in this dual "
                        "encoder's ViT; point vision.pretrained at a ViT folder of this architecture.")
    if pretrained is not None:  # the text tower is text_model.* here, bert.* in the source
        renamed = {f"text_model.{k.removeprefix('bert.')}": v for k, v in pretrained.state_dict.items()
                   if k.startswith("bert.")}
        reports["text"] = load_encoder(model, replace(pretrained, state_dict=renamed), [r"^text_model\."], [])
    return model, {part: report for part, report in reports.items() if report is not None}
