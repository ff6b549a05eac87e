"""Errors a user can cause and fix: raised with a message that names the fix."""


class UserError(Exception):
    """Bad input or configuration. The entry point prints the message, not a traceback."""
