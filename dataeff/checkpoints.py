"""What a dataeff checkpoint carries besides weights: its tokenizer, its task and its MLflow run.

Checkpoints are read with `weights_only=True`: tensors and plain data only, so a crafted file
cannot run code while it is unpickled. Everything dataeff adds (tokenizer JSON, model config,
run id, task name) is plain data for that reason.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
from pytorch_lightning.loggers import MLFlowLogger
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

from dataeff.errors import UserError
from dataeff.hf import refused_pickle


def read_checkpoint(path: str | Path, setting: str = "ckpt_path") -> dict:
    """The checkpoint's contents; `setting` names the override that gave the path, for messages."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"Checkpoint {path} does not exist; set {setting}= to a .ckpt that a dataeff "
                        "run wrote, e.g. outputs/<task>/runs/<time>/checkpoints/last.ckpt (a FINISHED job "
                        "keeps it with keep_checkpoints=last; init=mlflow_run init.source=<run id> starts "
                        "from any finished run's weights).")
    try:  # mmap: reading a few entries of a large checkpoint costs next to nothing
        return torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UserError(
            f"{setting}={path} holds Python objects besides tensors and plain data, and loading them "
            f"could run code, so dataeff refuses it ({refused_pickle(err)}). Use a checkpoint that a dataeff "
            "run wrote, or export the weights with save_pretrained and pass the folder with "
            "init=huggingface.") from None
    except (RuntimeError, OSError, EOFError, ValueError) as err:
        # torch.save writes a zip archive; torch's own message for anything else is about mmap
        detail = str(err).splitlines()[0][:160] if zipfile.is_zipfile(path) else "not a torch.save archive"
        raise UserError(
            f"{setting}={path} is not a readable PyTorch checkpoint: it is empty, truncated or in "
            f"another format ({detail}). Point {setting}= at a complete .ckpt that a dataeff run wrote "
            "(its checkpoints/ folder keeps last.ckpt and best-step*.ckpt).") from None


def tokenizer_state(tokenizer: PreTrainedTokenizerFast) -> dict:
    """Everything needed to rebuild the tokenizer, small enough to ride in every checkpoint."""
    return {"json": tokenizer.backend_tokenizer.to_str(),
            "special_tokens": dict(tokenizer.special_tokens_map)}


def annotate(checkpoint: dict, module) -> None:
    """Make a task's checkpoint self-contained: resume and transfer need no other file."""
    checkpoint["tokenizer"] = tokenizer_state(module.tokenizer) if module.tokenizer else None
    checkpoint["net_config"] = module.net.config.to_dict()
    checkpoint["task"] = module.hparams.get("name")
    for logger in module.trainer.loggers:  # none under fast_dev_run: Lightning swaps in a DummyLogger
        if isinstance(logger, MLFlowLogger):
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


def earlier_attempt(output_dir: str | Path) -> str | None:
    """A job started again in its own output folder (a SLURM job requeued after preemption, or the
    same hydra.run.dir) continues from the newest checkpoint its earlier attempt left there."""
    folder = Path(output_dir) / "checkpoints"
    found = [path for path in (folder / "interrupted.ckpt", folder / "last.ckpt") if path.is_file()]
    return str(max(found, key=lambda path: path.stat().st_mtime)) if found else None
