"""kgate: verifiable attendance for kindergarten gates."""

__version__ = "0.1.0"
