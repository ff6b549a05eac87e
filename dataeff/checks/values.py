"""Numbers in range wherever they sit in the config, recognised by their key: a seed, a learning
rate, a weight decay, a probability. Each would otherwise fail after the run exists, in numpy's
or the optimizer's words (`seed=-1`: "Seed must be between 0 and 2**32 - 1")."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dataeff.errors import UserError

MAX_SEED = 2**32 - 1  # numpy's and Lightning's seeds are 32-bit
COUNTS = {"vocab_size": 8000, "accumulate_grad_batches": 4, "log_every_n_steps": 50}  # name -> an example
PROFILER_STEPS = {"wait": ("wait", 0, 10), "warmup": ("warm up", 0, 2), "active": ("record", 1, 6),
                  "skip_first": ("skip", 0, 0)}
PROBABILITIES = ("mask_prob", "mask_ratio", "dropout", "_dropout_prob", "modality_dropout", "warmup_ratio",
                 "label_noise")


def check_values(cfg: DictConfig) -> None:
    for key, value in leaves(cfg):
        for rule in RULES:
            rule(key, value)
    tune = cfg.get("tune")
    for value in (tune.get("values") or []) if tune else []:  # each tried as the tuned setting itself
        for rule in RULES:
            rule(tune.param, value)


def leaves(node: DictConfig, prefix: str = "") -> Iterator[tuple[str, object]]:
    """(dotted key, resolved value) of every scalar outside `hydra`; a value that cannot be
    resolved is left to the checks that name it (check_missing, check_pretraining)."""
    for key in node:
        path = f"{prefix}{key}"
        if path == "hydra":
            continue
        try:
            value = node[key]
        except OmegaConfBaseException:
            continue
        if isinstance(value, DictConfig):
            yield from leaves(value, f"{path}.")
        elif not OmegaConf.is_config(value):
            yield path, value


def name(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_seed(key: str, value) -> None:
    if name(key) != "seed" and not name(key).endswith("_seed"):
        return
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise UserError(f"{key}={value!r} is not an integer; use a whole number, e.g. {key}=0.")
    if not 0 <= value <= MAX_SEED:
        raise UserError(f"{key}={value} is out of range: seeds are whole numbers from 0 to {MAX_SEED} "
                        f"(numpy's limit); use e.g. {key}=0.")


def check_learning_rate(key: str, value) -> None:
    if name(key) != "lr" and not key.startswith("lr_by_init."):
        return
    if value is None:
        return
    if not is_number(value) or not math.isfinite(value) or value <= 0:
        raise UserError(f"{key}={value} is not a learning rate: it must be a positive number, e.g. "
                        f"{key}=3e-4 (a negative rate climbs the loss, nan or inf ends in NaN weights).")


def check_weight_decay(key: str, value) -> None:
    if name(key) != "weight_decay" or value is None:
        return
    if not is_number(value) or not math.isfinite(value) or value < 0:
        raise UserError(f"{key}={value} is not a weight decay: it must be a number >= 0, e.g. {key}=0.01 "
                        "(0 turns it off).")


def check_probability(key: str, value) -> None:
    if not name(key).endswith(PROBABILITIES) or value is None:
        return
    if name(key) in ("mask_prob", "mask_ratio"):  # MLM's tokens, MIM's patches
        what, example = ("tokens", 0.15) if name(key) == "mask_prob" else ("image patches", 0.6)
        if not is_number(value) or not 0 < value < 1:
            raise UserError(f"{key}={value} is outside (0, 1): it is the share of {what} masked for the "
                            f"model to predict; use e.g. {key}={example}.")
        return
    if not is_number(value) or not 0 <= value <= 1:
        raise UserError(f"{key}={value} is a probability (a share), so it must be in [0, 1]; use e.g. "
                        f"{key}=0.1, or 0 to turn it off.")


def check_share(key: str, value) -> None:
    """A label budget's share (data.fraction, in (0, 1]), a validation share (in (0, 1))."""
    if name(key) not in ("fraction", "val_fraction") or value is None:
        return
    whole = name(key) == "fraction"
    if not is_number(value) or not (0 < value <= 1 if whole else 0 < value < 1):
        example = "0.1 for 10% of the labels" if whole else "0.1"
        interval = "(0, 1]" if whole else "(0, 1)"
        raise UserError(f"{key}={value} is a share of the data, so it must be in {interval}; "
                        f"use e.g. {key}={example}.")


def check_shots(key: str, value) -> None:
    if name(key) != "shots" or value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UserError(f"{key}={value} is not a number of labelled examples per class; use a positive whole "
                        f"number, e.g. {key}=8, or {key}=null for a data.fraction budget.")


def check_count(key: str, value) -> None:
    """Settings that count something and fail deep inside at zero or below (a modulo by zero, an
    unsigned vocabulary size)."""
    if name(key) not in COUNTS or value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UserError(f"{key}={value} is not a count: it must be a positive whole number, e.g. "
                        f"{key}={COUNTS[name(key)]}.")


def check_fraction_or_count(key: str, value) -> None:
    """Lightning's "a share (0.5) or a number of batches (250)" settings, where 0 trains or
    validates nothing, or divides by zero."""
    if key not in ("trainer.val_check_interval", "trainer.limit_train_batches") or value is None:
        return
    if not is_number(value) or value <= 0 or (isinstance(value, float) and value > 1):
        raise UserError(f"{key}={value} is neither a share of an epoch in (0, 1] nor a positive number of "
                        f"batches; use e.g. {key}=0.5 or {key}=250.")


def check_clip(key: str, value) -> None:
    if key != "trainer.gradient_clip_val" or value is None:
        return
    if not is_number(value) or not math.isfinite(value) or value < 0:
        raise UserError(f"{key}={value} is not a gradient norm to clip at: use a positive number, e.g. "
                        f"{key}=1.0, or null for no clipping.")


def check_profiler_schedule(key: str, value) -> None:
    """profiler=pytorch's window, which torch would refuse in an assertion once the run exists."""
    if not key.startswith("trainer.profiler.schedule.") or name(key) not in PROFILER_STEPS:
        return
    verb, least, example = PROFILER_STEPS[name(key)]
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise UserError(f"{key}={value} is not a number of training steps for the profiler to {verb}: use a "
                        f"whole number of at least {least}, e.g. {key}={example}.")


RULES: tuple[Callable[[str, object], None], ...] = (check_seed, check_learning_rate, check_weight_decay,
                                                    check_probability, check_share, check_shots, check_count,
                                                    check_fraction_or_count, check_clip,
                                                    check_profiler_schedule)
