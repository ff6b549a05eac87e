"""Hydra command-line overrides that dataeff writes for the runs it starts."""


def quote(value) -> str:
    """A Hydra override value that keeps `:`, `/` and spaces literal."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
