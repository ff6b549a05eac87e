"""Local Hugging Face folders, loaded safely: never their own Python code, never a prompt."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from dataeff.errors import UserError


def model_folder(path: str | Path, setting: str) -> Path:
    """The folder `setting` names, checked to be a save_pretrained folder."""
    folder = Path(path).expanduser()
    if not (folder / "config.json").exists():
        raise UserError(f"{setting}={path} is not a Hugging Face model folder (no config.json); "
                        "give a folder written by save_pretrained.")
    return folder


def load_local(loader, folder: str | Path, setting: str, **kwargs):
    """`loader(folder)` (a `from_pretrained`) with `trust_remote_code=False`: a folder whose
    config maps to custom code (`auto_map`) is refused with a message instead of a y/N prompt, and
    a folder whose files cannot be read safely (pickled weights, a corrupt file) with one naming it."""
    try:
        return loader(str(folder), trust_remote_code=False, **kwargs)
    except ValueError as err:
        if "custom code" not in str(err) and "trust_remote_code" not in str(err):
            raise
        raise UserError(f"{setting}={folder} needs Python code of its own to load (the auto_map of its "
                        "config.json), and dataeff never runs code from a model folder. Use a folder of "
                        "a standard transformers architecture (BERT, ViT), as save_pretrained writes it."
                        ) from None
    except (pickle.UnpicklingError, SafetensorError, OSError) as err:
        raise unreadable(folder, setting, err) from None


def read_weights(folder: Path, setting: str) -> dict[str, torch.Tensor]:
    """The tensors of a save_pretrained folder (its *.safetensors, else pytorch_model.bin, read
    with weights_only: no code runs), or one paragraph on why they cannot be read."""
    files = sorted(folder.glob("*.safetensors"))
    try:
        if files:
            return {key: value for file in files for key, value in load_file(file).items()}
        if (folder / "pytorch_model.bin").exists():
            return torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, SafetensorError, OSError, RuntimeError, EOFError) as err:
        raise unreadable(folder, setting, err) from None
    raise UserError(f"{setting}={folder} holds no weights (*.safetensors or pytorch_model.bin); give a "
                    "folder written by save_pretrained.")


def refused_pickle(err: pickle.UnpicklingError) -> str:
    """What torch's weights_only unpickler refused, in a few words ("it holds posix.system")."""
    found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
    return f"it holds {found.group(1)}" if found else str(err).splitlines()[0][:200]


def unreadable(folder: str | Path, setting: str, err: Exception) -> UserError:
    if isinstance(err, pickle.UnpicklingError):
        return UserError(f"{setting}={folder}: its weights (pytorch_model.bin) hold Python objects besides "
                         f"tensors, and loading them could run code, so dataeff refuses them "
                         f"({refused_pickle(err)}). If you trust the folder, save it again as safetensors "
                         "(model.save_pretrained writes model.safetensors); otherwise use another source.")
    detail = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
    return UserError(f"{setting}={folder} cannot be read: a file of it is truncated, corrupt or missing "
                     f"({detail}). Copy the folder again, or give one written by save_pretrained "
                     "(config.json, model.safetensors and its tokenizer files).")
