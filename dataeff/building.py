"""Building a job's parts from config: Hydra's `instantiate`, with the user's mistakes said plainly."""

from __future__ import annotations

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from dataeff.data.base import DataModule
from dataeff.errors import UserError, require_subclass


def build(node, **kwargs):
    """`instantiate`, but a UserError raised inside a constructor reaches the user unwrapped, and
    so does Lightning's refusal of a setting (a MisconfigurationException names the argument)."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        while cause is not None and not isinstance(cause, (UserError, MisconfigurationException)):
            cause = cause.__cause__
        if cause is None:
            raise
        if isinstance(cause, MisconfigurationException):
            raise UserError(lightning_refusal(cause)) from None
        raise cause from None


def lightning_refusal(err: MisconfigurationException) -> str:
    return (f"Lightning refuses these settings: {err} Change the trainer.* (or callbacks.*) override it "
            "names.")


def build_data(cfg) -> DataModule:
    datamodule = build(cfg.data)
    setting = f"data._target_={cfg.data.get('_target_')}"
    require_subclass(datamodule, DataModule, setting, "dataeff DataModule",
                     "it names what a job asks of its data beside Lightning's loaders (train_texts, "
                     "set_tokenizer, ...).")
    return datamodule
