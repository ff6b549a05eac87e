"""How a classifier reads one vector from BERT's token vectors (`model.pooling`), shared by
task=classify and the fusion text arm so that their text-only baselines are the same model."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    BertConfig,
    BertModel,
    BertPreTrainedModel,
)
from transformers.modeling_outputs import SequenceClassifierOutput


def mean_pool(sequence: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens: how sentence encoders such as all-MiniLM-L6-v2 were trained."""
    weights = mask.to(sequence.dtype).unsqueeze(-1)
    return (sequence * weights).sum(1) / weights.sum(1).clamp(min=1)


class MeanPooledBertConfig(BertConfig):
    """Its own model type, so that no library loads a mean-pooled classifier as a CLS-pooled
    `BertForSequenceClassification` and predicts from the wrong vector."""

    model_type = "dataeff_bert_mean"

    def __init__(self, normalize: bool = False, **settings):
        super().__init__(**settings)
        self.normalize = normalize  # the mean scaled to length 1 first (a sentence encoder's embedding)


class BertForMeanPooledClassification(BertPreTrainedModel):
    """`model.pooling=mean`: the classifier reads the mean of the token vectors (no pooler), scaled
    to length 1 when `config.normalize` (SetFit's head reads the embedding so); the same parameter
    names as `BertForSequenceClassification` otherwise."""

    config_class = MeanPooledBertConfig

    def __init__(self, config):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(config.classifier_dropout or config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None,
                **_) -> SequenceClassifierOutput:
        embedding = self.embed(input_ids, attention_mask, token_type_ids)
        logits = self.classifier(self.dropout(embedding))
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def embed(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        """(batch, hidden): what the classifier reads."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        sequence = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state
        pooled = mean_pool(sequence, attention_mask.bool())
        return F.normalize(pooled, dim=-1) if self.config.normalize else pooled


AutoConfig.register(MeanPooledBertConfig.model_type, MeanPooledBertConfig, exist_ok=True)
AutoModelForSequenceClassification.register(MeanPooledBertConfig, BertForMeanPooledClassification,
                                            exist_ok=True)


def config_as(config: BertConfig, kind: type) -> BertConfig:
    """The same BERT shape under the config class of the pooling in use (a source may have the other)."""
    if type(config) is kind:
        return config
    values = {k: v for k, v in config.to_dict().items() if k not in ("model_type", "architectures")}
    converted = kind(**values)
    converted._attn_implementation = "sdpa"
    return converted
