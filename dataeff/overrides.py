"""Hydra command-line overrides that dataeff writes for the runs it starts."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf


def quote(value) -> str:
    """A Hydra override value that keeps `:`, `/` and spaces literal."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


# A job's settings by what the runs it starts (tuning trials, the audit, AL rounds, a pretraining)
# do with them; the one policy each kind of sub-run picks from:
WHERE = ("paths", "logger", "subruns")  # where a run writes and logs: a sub-run gets the job's (Where)
RESTART = ("ckpt_path", "rerun", "keep_checkpoints")  # how this job resumes, what it keeps: its own
DRAW = ("seed", "data.data_seed")  # which draw of a cell: its runs differ here, a cell's tuning does not
DATA = ("data", "experiment", "audit", "study")  # what data a job reads (and paths.data_dir)
DERIVED = ("recipe",)  # follows from the task and al
IDENTITY_FREE = (*WHERE, *RESTART, *DERIVED)  # none of these changes what a run computes (its job key)


def is_kind(key: str, kinds: tuple[str, ...]) -> bool:
    """`key` (`data.fraction`) is one of `kinds` or sits under one (`data`)."""
    return any(key == kind or key.startswith(kind + ".") for kind in kinds)


def keep_overrides(overrides: Iterable[str], keep: Callable[[str], bool]) -> list[str]:
    """The overrides whose key (`data.fraction`, a group such as `init`; `+`/`~` aside) `keep`
    accepts: what a run started by a job (a tuning trial, a round, an audit) shares with it."""
    parser = OverridesParser.create()
    return [text for text in overrides if keep(parser.parse_override(text).key_or_group.lstrip("+~"))]


def typed_overrides(hydra_cfg: DictConfig | None = None) -> list[str]:
    """The command line's overrides as typed (this job's, or those of `hydra_cfg`, a sweep's): an
    interpolation in one (`task.method=${vision.init.method}`) is text to pass on, which the run it
    is passed to resolves; read through OmegaConf, it would be resolved here, where it may not fit."""
    node = (hydra_cfg if hydra_cfg is not None else HydraConfig.get()).overrides.task
    return [str(item) for item in OmegaConf.to_container(node, resolve=False)]
