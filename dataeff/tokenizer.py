"""WordPiece tokenizers: trained on the training corpus (cached by its hash) or loaded from disk."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from dataeff.errors import UserError
from dataeff.hf import load_local

log = logging.getLogger(__name__)
SPECIAL_TOKENS = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]",
                  "sep_token": "[SEP]", "mask_token": "[MASK]"}


def corpus_hash(texts: list[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:  # length-prefixed: ["a\nb"] and ["a", "b"] differ
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()[:16]


def train_wordpiece(texts: list[str], vocab_size: int, lowercase: bool = True,
                    min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """A BERT-style WordPiece tokenizer learned from `texts`."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=list(SPECIAL_TOKENS.values()))
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    if tok.get_vocab_size() > vocab_size:  # the trainer keeps every character, whatever the size
        raise UserError(f"tokenizer.vocab_size={vocab_size} is smaller than the {tok.get_vocab_size()} "
                        "characters and special tokens of the training text, so the model would be sized "
                        f"for a vocabulary it does not have; use at least tokenizer.vocab_size="
                        f"{tok.get_vocab_size()} (2000-30000 is usual).")
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL_TOKENS)


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise UserError(f"Tokenizer directory {path} does not exist; point tokenizer.path (or "
                        "model.pretrained) at a folder written by save_pretrained.")
    tokenizer = load_local(AutoTokenizer.from_pretrained, path, "tokenizer.path")
    if tokenizer.mask_token is None or tokenizer.pad_token is None:
        raise UserError(f"The tokenizer in {path} has no [MASK] or [PAD] token; masked-LM "
                        "training needs both. Use a BERT-style (WordPiece) tokenizer.")
    return tokenizer


def cached_wordpiece(texts: list[str], cache_dir: str | Path, vocab_size: int,
                     lowercase: bool = True, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """Train once per (corpus, settings); later runs on the same corpus load the saved one."""
    folder = wordpiece_folder(texts, cache_dir, vocab_size, lowercase, min_frequency)
    if (folder / "tokenizer.json").exists():
        log.info("Tokenizer from cache %s", folder)
        return load_tokenizer(folder)
    log.info("Training a WordPiece tokenizer (vocab %d) on %d texts", vocab_size, len(texts))
    tokenizer = train_wordpiece(texts, vocab_size, lowercase, min_frequency)
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    tokenizer.save_pretrained(str(tmp))
    try:
        tmp.replace(folder)  # atomic: a concurrent run never sees a half-written folder
    except OSError:  # another run cached one first: use it, so parallel runs share a vocabulary
        shutil.rmtree(tmp, ignore_errors=True)
        log.info("Tokenizer %s was cached concurrently; using it", folder)
        return load_tokenizer(folder)
    return tokenizer


def wordpiece_folder(texts: list[str], cache_dir: str | Path, vocab_size: int, lowercase: bool = True,
                     min_frequency: int = 2) -> Path:
    """Where `cached_wordpiece` keeps the tokenizer of this corpus and these settings."""
    casing = "uncased" if lowercase else "cased"
    return Path(cache_dir) / "tokenizers" / f"{corpus_hash(texts)}-v{vocab_size}-{casing}-f{min_frequency}"


def tokenizer_hash(tokenizer: PreTrainedTokenizerFast) -> str:
    """Identity of what the tokenizer produces; its per-call truncation/padding state excluded."""
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    state.pop("truncation", None)
    state.pop("padding", None)
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]
