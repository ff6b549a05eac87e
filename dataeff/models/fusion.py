"""ViT + BERT fusion classifiers: text, image or both, behind one Hugging Face model class.

`FusionConfig` holds the BERT and ViT configs, the fusion head (a Hydra `_target_` node, see
`fusion_heads`), the modalities used and modality dropout, so `save_pretrained` /
`from_pretrained` round-trip the whole model. With `modality=text` (or `image`) the other encoder
is not even built: the unimodal baselines see the same data, budget and training.
"""

from __future__ import annotations

import dataclasses

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn
from torch.nn import functional as F
from transformers import BertConfig, BertModel, PretrainedConfig, PreTrainedModel, ViTConfig, ViTModel
from transformers.modeling_outputs import SequenceClassifierOutput

from dataeff.errors import UserError
from dataeff.models.bert import freeze_pretrained, label_maps, text_config
from dataeff.models.fusion_heads import Features
from dataeff.models.init import load_encoder
from dataeff.models.pooled import config_as, mean_pool
from dataeff.models.pooling import pooling_of
from dataeff.models.shape import DataShape
from dataeff.models.vit import pretrained_vit_weights, vision_config

MODALITIES = ("text", "image", "both")


class FusionConfig(PretrainedConfig):
    model_type = "dataeff_fusion"
    sub_configs = {"text_config": BertConfig, "vision_config": ViTConfig}

    def __init__(self, text_config=None, vision_config=None, fusion: dict | None = None,
                 modality: str = "both", modality_dropout: float = 0.0, pooling: str = "mean", **kwargs):
        as_config = lambda cls, value: cls(**value) if isinstance(value, dict) else value  # noqa: E731
        self.text_config = as_config(BertConfig, text_config)
        self.vision_config = as_config(ViTConfig, vision_config)
        self.fusion = dict(fusion or {"_target_": "dataeff.models.fusion_heads.ConcatHead"})
        self.modality, self.modality_dropout = modality, modality_dropout
        self.pooling = pooling  # of the text arm: cls ([CLS] through the pooler) | mean, as model.pooling
        super().__init__(**kwargs)


class FusionModel(PreTrainedModel):
    config_class = FusionConfig
    base_model_prefix = "fusion"

    def __init__(self, config: FusionConfig):
        super().__init__(config)
        uses_text, uses_image = config.modality in ("text", "both"), config.modality in ("image", "both")
        self.bert = (BertModel(config.text_config, add_pooling_layer=config.pooling == "cls")
                     if uses_text else None)
        self.vit = ViTModel(config.vision_config, add_pooling_layer=False) if uses_image else None
        self.head = None
        if uses_text and uses_image:
            self.head = instantiate(config.fusion, text_dim=config.text_config.hidden_size,
                                    image_dim=config.vision_config.hidden_size)
            width = self.head.out_dim
        else:
            width = (config.text_config if uses_text else config.vision_config).hidden_size
        self.dropout = nn.Dropout(0.1)
        self.classifier = nn.Linear(width, config.num_labels)
        self.post_init()

    @property
    def stage(self) -> str:
        return getattr(self.head, "stage", "encoded")

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, pixel_values=None,
                labels=None, **_) -> SequenceClassifierOutput:
        text = self.encode_text(input_ids, attention_mask, token_type_ids) if self.bert else None
        image = self.encode_image(pixel_values) if self.vit else None
        if self.head is None:
            pooled = (text or image).pooled
        else:
            if self.training and self.config.modality_dropout > 0:
                text, image = drop_modality(text, image, self.config.modality_dropout)
            pooled = self.head(text, image)
        logits = self.classifier(self.dropout(pooled))
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def encode_text(self, input_ids, attention_mask, token_type_ids) -> Features:
        mask = attention_mask.bool()
        if self.stage == "embedded":  # early fusion reads the sequence, not a pooled vector
            sequence = self.bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
            return Features(sequence, mask, mean_pool(sequence, mask))
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        pooled = out.pooler_output if self.config.pooling == "cls" else mean_pool(out.last_hidden_state, mask)
        return Features(out.last_hidden_state, mask, pooled)

    def encode_image(self, pixel_values) -> Features:
        if self.stage == "embedded":
            sequence = self.vit.embeddings(pixel_values)
        else:
            sequence = self.vit(pixel_values=pixel_values).last_hidden_state
        mask = torch.ones(sequence.shape[:2], dtype=torch.bool, device=sequence.device)
        return Features(sequence, mask, mean_pool(sequence, mask))


def drop_modality(text: Features, image: Features, p: float) -> tuple[Features, Features]:
    """With probability p per example, zero one modality (text or image, evenly), never both."""
    batch = len(text.pooled)
    dropped = torch.rand(batch, device=text.pooled.device) < p
    text_side = torch.rand(batch, device=text.pooled.device) < 0.5
    return _scale(text, ~(dropped & text_side)), _scale(image, ~(dropped & ~text_side))


def _scale(features: Features, keep: torch.Tensor) -> Features:
    keep = keep.to(features.pooled.dtype)
    return dataclasses.replace(features, sequence=features.sequence * keep[:, None, None],
                               pooled=features.pooled * keep[:, None])


def head_config(fusion) -> dict:
    """The `fusion` group's node as the head's constructor call (`_target_` and its arguments)."""
    node = OmegaConf.to_container(fusion, resolve=True)
    return {key: value for key, value in node.items() if key not in ("name", "modality")}


def fusion_net(model_cfg, tokenizer, data: DataShape, pretrained=None, vision=None, fusion=None,
               include=(r"^bert\.",), exclude=(), freeze_encoder: bool = False):
    """`task.net` for task=fusion: BERT (model preset or `init`) + ViT (`vision`) + `fusion` head."""
    modality = model_cfg.get("modality", "both")
    if modality not in MODALITIES:
        raise UserError(f"model.modality={modality!r} is not one of {MODALITIES}.")
    if modality != "image" and tokenizer is None:
        raise UserError(f"The data {data.name!r} has no text column; use model.modality=image "
                        "(or set data.text_column).")
    config = FusionConfig(
        text_config=(config_as(text_config(model_cfg, tokenizer, pretrained), BertConfig)
                     if tokenizer is not None else None),
        vision_config=vision_config(vision, data.image_size),
        fusion=head_config(fusion),
        modality=modality,
        modality_dropout=float(model_cfg.get("modality_dropout", 0.0)),
        pooling=pooling_of(model_cfg),
        **label_maps(list(data.label_names)))
    model = FusionModel(config)
    reports = {}
    if model.vit is not None:
        vit_weights, reports["vision"] = pretrained_vit_weights(vision)
        model.load_state_dict(vit_weights, strict=False)
    if pretrained is not None and model.bert is not None:
        reports["text"] = load_encoder(model, pretrained, list(include), list(exclude))
    reports = {part: report for part, report in reports.items() if report is not None}
    if freeze_encoder:  # the pretrained ViT and text encoder, whichever this run has
        freeze_pretrained(model, {key for report in reports.values() for key in report["loaded"]})
    return model, reports
