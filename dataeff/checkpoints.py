"""What a dataeff checkpoint carries besides weights: its tokenizer and its MLflow run."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

from dataeff.errors import UserError


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"Checkpoint {path} does not exist; pass ckpt_path=<run dir>/checkpoints/"
                        "last.ckpt from an earlier run.")
    # mmap: reading a few entries of a large checkpoint costs next to nothing
    return torch.load(path, map_location="cpu", mmap=True, weights_only=False)


def tokenizer_state(tokenizer: PreTrainedTokenizerFast) -> dict:
    """Everything needed to rebuild the tokenizer, small enough to ride in every checkpoint."""
    return {"json": tokenizer.backend_tokenizer.to_str(),
            "special_tokens": dict(tokenizer.special_tokens_map)}


def annotate(checkpoint: dict, module) -> None:
    """Make a task's checkpoint self-contained: resume and transfer need no other file."""
    checkpoint["tokenizer"] = tokenizer_state(module.tokenizer) if module.tokenizer else None
    checkpoint["net_config"] = module.net.config.to_dict()
    for logger in module.trainer.loggers:
        if hasattr(logger, "run_id"):  # MLFlowLogger
            checkpoint["mlflow_run_id"] = logger.run_id


def tokenizer_from_checkpoint(path: str | Path, checkpoint: dict | None = None
                              ) -> PreTrainedTokenizerFast | None:
    """Pass `checkpoint` when it is already loaded, so the file is read once."""
    checkpoint = checkpoint if checkpoint is not None else read_checkpoint(path)
    if "tokenizer" in checkpoint and checkpoint["tokenizer"] is None:
        return None  # an image-only model
    state = checkpoint.get("tokenizer")
    if state is None:
        raise UserError(f"Checkpoint {path} carries no tokenizer: it was not written by dataeff. "
                        "Load its weights with model.pretrained=<Hugging Face folder> instead.")
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(state["json"]),
                                   **state["special_tokens"])


def mlflow_run_id(path: str | Path) -> str | None:
    return read_checkpoint(path).get("mlflow_run_id")
