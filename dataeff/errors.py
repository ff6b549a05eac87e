"""Errors a user can cause and fix: raised with a message that names the fix."""


class UserError(Exception):
    """Bad input or configuration. The entry point prints the message, not a traceback."""


def require_subclass(made: object, base: type, setting: str, what: str, why: str) -> None:
    """A part a user named by `_target_` must extend dataeff's `base`: else one paragraph saying so."""
    if not isinstance(made, base):
        kind = type(made)
        raise UserError(f"{setting} makes a {kind.__module__}.{kind.__name__}, which is no {what}. Subclass "
                        f"{base.__module__}.{base.__qualname__}: {why}")
