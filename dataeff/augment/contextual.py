"""Contextual replacement: mask a share of the tokens and fill them with an MLM's predictions
(Kobayashi 2018; Wu et al. 2019). The MLM is a pretraining run of this project (by MLflow run id:
the job's fetch stage puts its hf_model/ folder in the cache), a dataeff checkpoint, or a local
Hugging Face folder; it must have its MLM head."""

from __future__ import annotations

import random
from pathlib import Path

import torch
from transformers import BertForMaskedLM

from dataeff.augment.base import TextAugmenter
from dataeff.errors import UserError
from dataeff.models.init import from_checkpoint, from_huggingface


class MLMReplacement(TextAugmenter):
    """`source`: a .ckpt or a folder (a run id, fetched into one by the job's stages). A study's
    pretraining run (`init.pretrain`) is filled in as the source by its pretraining stage."""

    def __init__(self, source: str | None = None, p: float = 0.15, top_k: int = 10):
        if not 0 < p <= 1:
            raise UserError(f"augment.text.mlm.p={p} must be in (0, 1]: the share of tokens to replace.")
        if source is None:
            raise UserError("augment=mlm needs an MLM: set augment.text.mlm.source=<MLM run id, .ckpt or "
                            "folder>, or a study's init.pretrain.")
        self.p, self.top_k = p, top_k
        self.model, self.tokenizer, self.load_report = load_mlm(str(source))

    @torch.no_grad()
    def __call__(self, text: str, rng: random.Random, copy: int = 0) -> str:
        encoded = self.tokenizer(text, truncation=True, max_length=128, return_tensors="pt")
        ids = encoded["input_ids"][0]
        special = set(self.tokenizer.all_special_ids)
        positions = [i for i, token in enumerate(ids.tolist()) if token not in special]
        if not positions:
            return text
        chosen = rng.sample(positions, max(1, round(self.p * len(positions))))
        masked = ids.clone()
        masked[chosen] = self.tokenizer.mask_token_id
        logits = self.model(input_ids=masked[None], attention_mask=encoded["attention_mask"]).logits[0]
        logits[:, list(special)] = -float("inf")  # never fill in [CLS], [PAD], [MASK]...
        generator = torch.Generator().manual_seed(rng.randrange(2**31))
        for position in chosen:
            top = logits[position].topk(self.top_k)
            pick = torch.multinomial(top.values.softmax(-1), 1, generator=generator)
            masked[position] = top.indices[pick]
        return self.tokenizer.decode(masked, skip_special_tokens=True)


def load_mlm(source: str):
    """(BertForMaskedLM in eval mode, its tokenizer, what was loaded) from a checkpoint or a folder."""
    path = Path(source).expanduser()
    if path.suffix == ".ckpt":
        pretrained = from_checkpoint(str(path))
    elif path.is_dir():
        pretrained = from_huggingface(str(path))
    else:
        raise UserError(f"augment.text.mlm.source={source} is neither a folder nor a .ckpt; an MLflow run id "
                        "is fetched into a folder by a dataeff-train job's stages, before its data is built.")
    if not any(key.startswith("cls.predictions") for key in pretrained.state_dict):
        raise UserError(f"{pretrained.source} has no MLM head (cls.predictions.*), so it cannot fill in "
                        "masked words; use an MLM pretraining run of this project (task=mlm) or a "
                        "checkpoint saved with its MLM head.")
    model = BertForMaskedLM(pretrained.config)
    return model.eval(), pretrained.tokenizer, load_whole(model, pretrained.state_dict, pretrained.source)


def load_whole(model: torch.nn.Module, weights: dict, source: str) -> dict:
    """Every weight of `model` from `weights`, or a clear refusal: a half-random MLM would fill in
    noise. Weights tied to a loaded one (the decoder shares the word embeddings) count as loaded."""
    result = model.load_state_dict(weights, strict=False)
    own = model.state_dict()
    loaded_storage = {own[key].data_ptr() for key in own if key not in result.missing_keys}
    missing = sorted(key for key in result.missing_keys if own[key].data_ptr() not in loaded_storage)
    if missing:
        raise UserError(f"{source} lacks {len(missing)} weight(s) of its MLM, e.g. {missing[0]}, so the "
                        "augmenter would fill in words from a partly random model; point "
                        "augment.text.mlm.source at a whole MLM (a task=mlm run, its .ckpt or hf_model/).")
    return {"source": source, "loaded": sorted(set(own) - set(missing)), "missing": [],
            "unexpected": sorted(result.unexpected_keys)}
