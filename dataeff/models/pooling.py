"""`model.pooling`: how classify and the fusion text arm read one vector from BERT's tokens. Apart
from the models (dataeff.models.pooled) so that checking a config loads no transformers."""

from __future__ import annotations

from dataeff.errors import UserError

POOLINGS = ("cls", "mean")


def pooling_of(model_cfg) -> str:
    pooling = (model_cfg or {}).get("pooling", "mean")
    if pooling not in POOLINGS:
        raise UserError(f"model.pooling={pooling!r} is not one of {' | '.join(POOLINGS)}: cls reads [CLS] "
                        "through BERT's pooler (as BertForSequenceClassification), mean averages the "
                        "token vectors (as sentence encoders such as MiniLM were trained).")
    return pooling
