"""The root of every kgate exception tree.

Each package has its own ``errors.py`` whose base class subclasses :class:`KgateError`; the CLI turns
any ``KgateError`` into a one-line message on stderr and the error's ``exit_code``.
"""


class KgateError(Exception):
    """Base class of all errors kgate reports to a user."""

    exit_code: int = 2


class UsageError(KgateError, ValueError):
    """The command line or a configuration value is wrong."""


class InputError(UsageError):
    """A local input file is unreadable, too large, not a regular file, or too deeply nested to parse.

    ``subject`` names the input (``roster file /dev/zero``) and ``reason`` says what is wrong
    (``is not a regular file``), so a caller with its own error type can rephrase it.
    """

    def __init__(self, subject: str, reason: str) -> None:
        super().__init__(f"{subject} {reason}")
        self.subject = subject
        self.reason = reason
