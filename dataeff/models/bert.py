"""BERT encoders with a masked-LM head, from a config preset or a local Hugging Face folder."""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.utils import instantiate
from transformers import BertConfig, BertForMaskedLM

from dataeff.errors import UserError

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
    folder = Path(path).expanduser()
    if not (folder / "config.json").exists():
        raise UserError(f"model.pretrained={path} is not a Hugging Face model folder (no "
                        "config.json); give a folder written by save_pretrained.")
    model, info = BertForMaskedLM.from_pretrained(str(folder), attn_implementation="sdpa",
                                                  output_loading_info=True)
    if model.config.vocab_size != len(tokenizer):
        raise UserError(f"The weights in {path} expect a vocabulary of {model.config.vocab_size} "
                        f"tokens but the tokenizer has {len(tokenizer)}; use the tokenizer saved "
                        "with the weights (drop tokenizer.path).")
    if info["missing_keys"]:  # e.g. sentence-embedding checkpoints ship no MLM head
        log.warning("Initialised fresh (not in %s): %s", path, ", ".join(info["missing_keys"]))
    return model
