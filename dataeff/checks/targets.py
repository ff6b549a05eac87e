"""Every `_target_` of the config against its signature: a misspelt or unknown setting
(`+trainer.max_step=10`, `+task.optimizer.betas2=...`) is named with the settings that exist,
before any run, instead of a TypeError that Hydra wraps in "Error in call to target"."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterator

from hydra.utils import get_object
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from dataeff.errors import UserError

LABELS = ("name",)  # what a config group calls its option, for tracking; never passed on


def check_targets(cfg: DictConfig) -> None:
    for path, node in target_nodes(cfg):
        target = node._target_
        try:
            made = get_object(target)
        except Exception as err:  # a user's module may fail in any way while it is imported
            raise UserError(f"{path}._target_={target} cannot be imported ({type(err).__name__}: {err}). "
                            "Name a class or function as package.module.Name, its package "
                            "installed.") from None
        unknown = [key for key in node if not key.startswith("_") and key not in LABELS]
        accepted = parameters(made)
        if accepted is None:
            continue
        unknown = [key for key in unknown if key not in accepted]
        if unknown:
            raise UserError(unknown_message(path, target, unknown[0], accepted))


def target_nodes(node: DictConfig, prefix: str = "") -> Iterator[tuple[str, DictConfig]]:
    """(dotted path, node) of every node with a `_target_`, outside `hydra`."""
    for key in node:
        path = f"{prefix}{key}"
        if path == "hydra":
            continue
        try:
            value = node[key]
        except OmegaConfBaseException:
            continue
        if isinstance(value, DictConfig):
            if "_target_" in value and isinstance(value.get("_target_"), str):
                yield path, value
            yield from target_nodes(value, f"{path}.")


def parameters(made) -> set[str] | None:
    """The keyword arguments `made` (a class or function) takes; None when it takes any. A class of
    dataeff's whose `__init__` takes `**settings` hands them on to its base class, whose keywords
    it takes too (a class of yours with `**kwargs` may use them any way: it takes any)."""
    try:
        signature = inspect.signature(made)
    except (TypeError, ValueError):  # a builtin without a signature: nothing to check against
        return None
    names = {name for name, parameter in signature.parameters.items()
             if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)}
    if all(parameter.kind != parameter.VAR_KEYWORD for parameter in signature.parameters.values()):
        return names
    ours = inspect.isclass(made) and made.__module__.startswith("dataeff.")
    base = next((cls for cls in made.__mro__[1:] if "__init__" in vars(cls)), object) if ours else object
    inherited = parameters(base) if base is not object else None
    return None if inherited is None else names | inherited


def unknown_message(path: str, target: str, key: str, accepted: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(accepted), n=1)
    hint = f"did you mean {path}.{close[0]}? " if close else ""
    return (f"{path}.{key} is not a setting of {target} ({hint}its settings: {', '.join(sorted(accepted))}). "
            f"Fix its spelling, or leave it out.")
