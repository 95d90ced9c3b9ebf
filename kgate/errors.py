"""The root of every kgate exception tree.

Each package has its own ``errors.py`` whose base class subclasses :class:`KgateError`; the CLI turns
any ``KgateError`` into a one-line message on stderr and the error's ``exit_code``.
"""


class KgateError(Exception):
    """Base class of all errors kgate reports to a user."""

    exit_code: int = 2


class UsageError(KgateError, ValueError):
    """The command line or a configuration value is wrong."""
