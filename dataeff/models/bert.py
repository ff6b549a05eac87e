"""BERT encoders with a masked-LM head, from a config preset or a local Hugging Face folder."""

from __future__ import annotations

import logging

import torch
from hydra.utils import instantiate
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification

from dataeff.errors import UserError
from dataeff.hf import load_local, model_folder
from dataeff.models.init import load_encoder
from dataeff.models.pooled import BertForMeanPooledClassification, MeanPooledBertConfig, config_as
from dataeff.models.pooling import pooling_of
from dataeff.models.shape import DataShape

log = logging.getLogger(__name__)


def build_mlm_model(model_cfg, tokenizer) -> BertForMaskedLM:
    """`model_cfg.pretrained` (a local folder) wins over the preset in `model_cfg.config`."""
    if model_cfg.get("pretrained"):
        return load_pretrained_mlm(model_cfg.pretrained, tokenizer)
    config: BertConfig = instantiate(model_cfg.config)
    config.vocab_size = len(tokenizer)
    config.pad_token_id = tokenizer.pad_token_id
    config._attn_implementation = "sdpa"  # fused attention kernels on CPU and GPU
    return BertForMaskedLM(config)


def load_pretrained_mlm(path: str, tokenizer) -> BertForMaskedLM:
    folder = model_folder(path, "model.pretrained")
    model, info = load_local(BertForMaskedLM.from_pretrained, folder, "model.pretrained",
                             attn_implementation="sdpa", output_loading_info=True)
    if model.config.vocab_size != len(tokenizer):
        raise UserError(f"The weights in {path} expect a vocabulary of {model.config.vocab_size} "
                        f"tokens but the tokenizer has {len(tokenizer)}; use the tokenizer saved "
                        "with the weights (drop tokenizer.path).")
    if info["missing_keys"]:  # e.g. sentence-embedding checkpoints ship no MLM head
        log.warning("Initialised fresh (not in %s): %s", path, ", ".join(info["missing_keys"]))
    return model.train()  # from_pretrained returns eval mode, which would train without dropout


def text_config(model_cfg, tokenizer, pretrained=None) -> BertConfig:
    """The preset's config sized to the tokenizer, or the init source's own (checked against it)."""
    if pretrained is None:
        config = instantiate(model_cfg.config)
        config.vocab_size, config.pad_token_id = len(tokenizer), tokenizer.pad_token_id
    else:
        config = pretrained.config
        if config.vocab_size != len(tokenizer):
            raise UserError(f"The weights from {pretrained.source} expect {config.vocab_size} tokens "
                            f"but the tokenizer has {len(tokenizer)}: the tokenizer must come with the "
                            "weights (do not set tokenizer.path with init).")
    config._attn_implementation = "sdpa"
    return config


def packed_attention_mask(segment_ids: torch.Tensor) -> torch.Tensor:
    """(batch, 1, L, L) for SDPA attention (True: attend) from the text number of each token
    (0: padding, see `dataeff.data.packing`): a token sees the tokens of its own text only, so
    packed texts do not read each other. A padding position sees itself, which keeps its softmax
    defined; nothing reads it."""
    same_text = (segment_ids[:, :, None] == segment_ids[:, None, :]) & (segment_ids[:, None, :] > 0)
    itself = torch.eye(segment_ids.shape[1], dtype=torch.bool, device=segment_ids.device)
    return (same_text | itself)[:, None]


def label_maps(names) -> dict:
    """`id2label`/`label2id` for a config, so an exported model names its classes as the data does."""
    return {"id2label": dict(enumerate(map(str, names))),
            "label2id": {str(name): i for i, name in enumerate(names)}}


def build_classifier(model_cfg, tokenizer, num_labels: int, pretrained=None, include=(r"^bert\.",),
                     exclude=(), label_names=None, pooling: str | None = None,
                     ) -> tuple[BertForSequenceClassification, dict | None]:
    """A fresh head on an encoder that is either new (the preset) or copied from `pretrained`;
    returns the model and the load report (loaded / missing / unexpected keys). `pooling`: the
    model preset's unless given (`normalized` is mean pooling scaled to length 1)."""
    config = text_config(model_cfg, tokenizer, pretrained)
    config.num_labels = num_labels
    if label_names is not None:
        config.update(label_maps(label_names))
    pooling = pooling or pooling_of(model_cfg)
    mean = pooling in ("mean", "normalized")
    config = config_as(config, MeanPooledBertConfig if mean else BertConfig)
    if mean:
        config.normalize = pooling == "normalized"
    model = (BertForMeanPooledClassification if mean else BertForSequenceClassification)(config)
    if pretrained is None:
        return model, None
    return model, load_encoder(model, pretrained, list(include), list(exclude))


def freeze_pretrained(model: torch.nn.Module, loaded: set[str]) -> None:
    """`task.freeze_encoder` (a linear probe): freeze the weights the init loaded, and nothing that
    starts random (the head, or the pooler that an MLM run never had)."""
    if not loaded:
        raise UserError("task.freeze_encoder=true freezes a pretrained encoder (a linear probe), but this "
                        "run loads no pretrained weights, so its head would learn over random features; "
                        "choose an init (e.g. init=minilm or init=mlflow_run init.source=<run id>) or set "
                        "task.freeze_encoder=false.")
    for name, param in model.named_parameters():
        if name in loaded:
            param.requires_grad_(False)


def mlm_net(model_cfg, tokenizer, data: DataShape, pretrained=None):
    """`task.net` for MLM: continued pretraining comes through model.pretrained."""
    return build_mlm_model(model_cfg, tokenizer), {}


def classifier_net(model_cfg, tokenizer, data: DataShape, pretrained=None, include=(r"^bert\.",),
                   exclude=(), freeze_encoder: bool = False):
    """`task.net` for classification: one output per label of the training data. Returns the
    model and, like every `task.net`, the load report of each pretrained part ({"text": ...})."""
    names = list(data.label_names)
    model, report = build_classifier(model_cfg, tokenizer, len(names), pretrained, include, exclude, names)
    if freeze_encoder:
        freeze_pretrained(model, set(report["loaded"]) if report else set())
    return model, {"text": report} if report else {}


def sentence_encoder_net(model_cfg, tokenizer, data: DataShape, pretrained=None, include=(r"^bert\.",),
                         exclude=()):
    """`task.net` for SetFit: a sentence encoder (the mean of the token vectors, length 1, as
    sentence-transformers' all-MiniLM-L6-v2 embeds) under a linear head over that embedding, so
    that the exported folder predicts as SetFit's encoder + logistic regression do."""
    names = list(data.label_names)
    model, report = build_classifier(model_cfg, tokenizer, len(names), pretrained, include, exclude, names,
                                     pooling="normalized")
    return model, {"text": report} if report else {}
