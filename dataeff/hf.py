"""Local Hugging Face folders, loaded safely: never their own Python code, never a prompt."""

from __future__ import annotations

from pathlib import Path

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
    config maps to custom code (`auto_map`) is refused with a message instead of a y/N prompt."""
    try:
        return loader(str(folder), trust_remote_code=False, **kwargs)
    except ValueError as err:
        if "custom code" not in str(err) and "trust_remote_code" not in str(err):
            raise
        raise UserError(f"{setting}={folder} needs Python code of its own to load (the auto_map of its "
                        "config.json), and dataeff never runs code from a model folder. Use a folder of "
                        "a standard transformers architecture (BERT, ViT), as save_pretrained writes it."
                        ) from None
