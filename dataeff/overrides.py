"""Hydra command-line overrides that dataeff writes for the runs it starts."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from hydra.core.override_parser.overrides_parser import OverridesParser


def quote(value) -> str:
    """A Hydra override value that keeps `:`, `/` and spaces literal."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def keep_overrides(overrides: Iterable[str], keep: Callable[[str], bool]) -> list[str]:
    """The overrides whose key (`data.fraction`, a group such as `init`; `+`/`~` aside) `keep`
    accepts: what a run started by a job (a tuning trial, a round, an audit) shares with it."""
    parser = OverridesParser.create()
    return [text for text in overrides if keep(parser.parse_override(text).key_or_group.lstrip("+~"))]
