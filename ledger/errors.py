"""Exceptions of the ledger package: one tree, each also the closest builtin."""

from kgate.errors import KgateError


class LedgerError(KgateError):
    """Base class of ledger errors."""


class NoteError(LedgerError, ValueError):
    """A signed note or key could not be parsed or verified."""


class MalformedNoteError(NoteError):
    """The note text or a signature line is not in c2sp.org/signed-note form."""


class InvalidSignatureError(NoteError):
    """A signature by a known key does not verify."""


class UnverifiedNoteError(NoteError):
    """No signature on the note is by a key the caller trusts."""


class BadKeyError(NoteError):
    """A vkey/skey string is malformed, has the wrong length, hash or algorithm."""


class CheckpointError(LedgerError, ValueError):
    """A checkpoint body is malformed."""


class ProofError(LedgerError, ValueError):
    """An inclusion or consistency proof does not verify."""


class EntryError(LedgerError, ValueError):
    """An entry's bytes are not a valid canonical entry."""


class StorageError(LedgerError, OSError):
    """A database cannot be opened, read or written (corrupt, not SQLite, disk full, locked).

    Raised by the storage boundary (:mod:`ledger.sqlite`) for every kgate SQLite database: the ledger,
    the roster, the sync agent's state and the register's SQLite store.
    """


class KeyFileError(LedgerError, PermissionError):
    """The device key file is missing, unreadable, or has unsafe mode/owner."""


class FetchError(LedgerError):
    """Pulling a log from a c2sp.org/tlog-tiles server failed (:mod:`ledger.tileclient`)."""


class FetchUnreachable(FetchError, ConnectionError):
    """No HTTP answer (connection refused or reset, DNS, TLS, timeout): retry later."""


class FetchRefused(FetchError, PermissionError):
    """The tiles server refused our request signature (HTTP 401)."""


class PulledLogInvalid(FetchError, ValueError):
    """A pulled log (checkpoint, hash tiles, entry bundles) does not verify or is malformed."""


class VerificationError(LedgerError):
    """The ledger is invalid; ``index`` names the first bad entry (or None when not entry-specific)."""

    exit_code = 1

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class DatabaseBusy(StorageError):
    """Another process holds the write lock longer than the busy timeout; retry later."""


class DiskFull(StorageError):
    """The disk is full; nothing was written. Retry once space is freed."""


class CorruptDatabase(StorageError):
    """The file is not SQLite, not the kind of kgate database expected, or holds a damaged row."""


#: The ledger's names for the same conditions (older code and tests use them).
LedgerBusy = DatabaseBusy
CorruptLedger = CorruptDatabase
