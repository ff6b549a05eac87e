"""Fusion heads: how text and image features become one vector for the classifier.

Every head gets the two encoders' outputs as `Features` (a token sequence, its padding mask and a
pooled vector) and returns one pooled vector of `head.out_dim` per example. `stage` tells the
model what to feed: "encoded" (the encoders' last hidden states) or "embedded" (just their input
embeddings, for early fusion, where one joint transformer does all the encoding).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Features:
    sequence: torch.Tensor  # [batch, tokens, dim]
    mask: torch.Tensor      # [batch, tokens], True where there is a token (not padding)
    pooled: torch.Tensor    # [batch, dim]


class ConcatHead(nn.Module):
    """Late fusion: concatenate the pooled text and image vectors, then an MLP."""

    stage = "encoded"

    def __init__(self, text_dim: int, image_dim: int, hidden: int = 256, dropout: float = 0.1):
        super().__init__()
        self.out_dim = hidden
        self.mlp = nn.Sequential(nn.Linear(text_dim + image_dim, hidden), nn.GELU(), nn.Dropout(dropout))

    def forward(self, text: Features, image: Features) -> torch.Tensor:
        return self.mlp(torch.cat([text.pooled, image.pooled], dim=-1))


class GatedHead(nn.Module):
    """Gated fusion (as in Arevalo et al. 2017's GMU): a learned, per-feature sigmoid gate mixes
    the projected text and image vectors, so each feature picks its modality per example."""

    stage = "encoded"

    def __init__(self, text_dim: int, image_dim: int, hidden: int = 256, dropout: float = 0.1):
        super().__init__()
        self.out_dim = hidden
        self.text_proj, self.image_proj = nn.Linear(text_dim, hidden), nn.Linear(image_dim, hidden)
        self.gate = nn.Linear(text_dim + image_dim, hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, text: Features, image: Features) -> torch.Tensor:
        gate = torch.sigmoid(self.gate(torch.cat([text.pooled, image.pooled], dim=-1)))
        mixed = gate * torch.tanh(self.text_proj(text.pooled)) + (1 - gate) * torch.tanh(
            self.image_proj(image.pooled))
        return self.dropout(mixed)


class CrossAttentionHead(nn.Module):
    """Text tokens attend to image patches (queries: text; keys and values: image), with a
    residual connection and a feed-forward block; the [CLS] position is the pooled vector."""

    stage = "encoded"

    def __init__(self, text_dim: int, image_dim: int, heads: int = 4, dropout: float = 0.1):
        super().__init__()
        self.out_dim = text_dim
        self.attention = nn.MultiheadAttention(text_dim, heads, dropout=dropout, kdim=image_dim,
                                               vdim=image_dim, batch_first=True)
        self.norm1, self.norm2 = nn.LayerNorm(text_dim), nn.LayerNorm(text_dim)
        self.ffn = nn.Sequential(nn.Linear(text_dim, 4 * text_dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(4 * text_dim, text_dim))

    def forward(self, text: Features, image: Features) -> torch.Tensor:
        attended, _ = self.attention(text.sequence, image.sequence, image.sequence,
                                     key_padding_mask=~image.mask, need_weights=False)
        hidden = self.norm1(text.sequence + attended)
        hidden = self.norm2(hidden + self.ffn(hidden))
        return hidden[:, 0]


class EarlyFusionHead(nn.Module):
    """Early fusion: one joint transformer over [text embeddings; image patch embeddings], each
    projected to `hidden` and tagged with a learned modality embedding; pooled at a fresh [CLS]."""

    stage = "embedded"

    def __init__(self, text_dim: int, image_dim: int, hidden: int = 128, layers: int = 2,
                 heads: int = 4, dropout: float = 0.1):
        super().__init__()
        self.out_dim = hidden
        self.text_proj, self.image_proj = nn.Linear(text_dim, hidden), nn.Linear(image_dim, hidden)
        self.modality = nn.Embedding(2, hidden)
        self.cls = nn.Parameter(torch.zeros(1, 1, hidden))
        layer = nn.TransformerEncoderLayer(hidden, heads, 4 * hidden, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, text: Features, image: Features) -> torch.Tensor:
        tokens = torch.cat([self.cls.expand(len(text.sequence), -1, -1),
                            self.text_proj(text.sequence) + self.modality.weight[0],
                            self.image_proj(image.sequence) + self.modality.weight[1]], dim=1)
        keep = torch.cat([torch.ones_like(text.mask[:, :1]), text.mask, image.mask], dim=1)
        return self.norm(self.encoder(tokens, src_key_padding_mask=~keep)[:, 0])
