"""Checkpoints (c2sp.org/tlog-checkpoint@v1.0.0): a log's signed tree head, as a signed note.

The body is origin, tree size, base64 root hash, then optional extension lines, each ending
in a newline. ``open_checkpoint`` trusts a checkpoint only if the log's own key signed it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ledger.errors import CheckpointError, UnverifiedNoteError
from ledger.note import (
    _SIG_PREFIX,
    MAX_NOTE_SIZE,
    Note,
    Signature,
    Signer,
    Verifier,
    open_note,
    sign_note,
    verify_note,
)

MAX_TREE_SIZE = 2**64 - 1  # sizes are uint64 in every implementation we interoperate with
_SIZE = re.compile("0|[1-9][0-9]{0,19}")
_BAD_CHAR = re.compile("[\x00-\x1f\ud800-\udfff]")  # controls (newline included) and lone surrogates


def _check_line(line: str, what: str) -> None:
    if not line:
        raise CheckpointError(f"{what} is empty")
    if _BAD_CHAR.search(line):
        raise CheckpointError(f"{what} contains a control character or invalid Unicode")


@dataclass(frozen=True)
class Checkpoint:
    """A tree head of the log named ``origin``: ``size`` leaves with RFC 6962 root hash ``root``."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if (
            isinstance(self.size, bool)
            or not isinstance(self.size, int)
            or not 0 <= self.size <= MAX_TREE_SIZE
        ):
            raise CheckpointError(f"tree size must be an integer in 0..2^64-1, got {self.size!r}")
        if not isinstance(self.root, bytes) or len(self.root) != 32:
            raise CheckpointError("root hash must be 32 bytes")
        for i, line in enumerate(self.extensions, start=4):
            _check_line(line, f"extension line {i}")

    def body(self) -> str:
        """The note text to sign: one field per line, each ending in a newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body strictly; CheckpointError names the first problem."""
        if len(text) > MAX_NOTE_SIZE:
            raise CheckpointError(f"checkpoint larger than {MAX_NOTE_SIZE} characters")
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("checkpoint needs origin, size and root hash lines")
        origin, size, root, *extensions = lines
        _check_line(origin, "origin")
        if not _SIZE.fullmatch(size):
            raise CheckpointError(f"tree size {size[:30]!r} is not a decimal without leading zeroes")
        raw = _decode_root(root)
        return cls(origin, int(size), raw, tuple(extensions))


def _decode_root(text: str) -> bytes:
    """Standard base64 of exactly 32 bytes, in its one canonical spelling."""
    try:
        raw = base64.b64decode(text, validate=True) if text.isascii() else b""
    except ValueError:
        raw = b""
    if len(raw) != 32 or base64.b64encode(raw).decode() != text:
        raise CheckpointError(f"root hash {text[:60]!r} is not base64 of 32 bytes")
    return raw


def sign_checkpoint(cp: Checkpoint, signer: Signer) -> str:
    """The checkpoint as a signed note, signed by the log's key (whose name should be the origin)."""
    return sign_note(cp.body(), signer)


class CheckpointSigner:
    """Signs one log's checkpoints with one key: :func:`sign_checkpoint`, the per-log work done once.

    The origin line, the signer's name and key hash are checked and formatted when this is made; each
    :meth:`sign` then only formats the size and root, signs, and writes the one signature line. The
    result is byte for byte what ``sign_checkpoint(Checkpoint(origin, size, root), signer)`` returns.
    """

    __slots__ = ("_key_hash", "_line", "_origin", "_signer")

    def __init__(self, origin: str, signer: Signer) -> None:
        # The largest checkpoint this log can have passes every check sign_checkpoint makes.
        sign_checkpoint(Checkpoint(origin, MAX_TREE_SIZE, bytes(32)), signer)
        self._origin = origin
        self._signer = signer
        self._line = f"{_SIG_PREFIX}{signer.name} "
        self._key_hash = signer.key_hash.to_bytes(4, "big")

    def sign(self, size: int, root: bytes) -> str:
        """The signed note of the checkpoint (origin, ``size``, ``root``)."""
        if not (type(size) is int and 0 <= size <= MAX_TREE_SIZE and type(root) is bytes and len(root) == 32):
            Checkpoint(self._origin, size, root)  # raises CheckpointError naming the problem
        text = f"{self._origin}\n{size}\n{base64.b64encode(root).decode()}\n"
        sig = self._key_hash + self._signer.sign(text.encode())
        return f"{text}\n{self._line}{base64.b64encode(sig).decode()}\n"


def open_checkpoint(
    note: str,
    verifiers: Iterable[Verifier],
    *,
    log_name: str | None = None,
    parsed: tuple[str, tuple[Signature, ...]] | None = None,
) -> tuple[Checkpoint, Note]:
    """Verify a signed checkpoint, then parse it.

    Besides the signed-note rules, a signature by the log key must have verified: the trusted
    verifier named like the origin (or ``log_name`` for logs such as sum.golang.org whose key
    name differs). Witness cosignatures alone never make a checkpoint trusted. ``parsed`` is what
    ``parse_note(note)`` returned, for a caller that already split the note (it is not split again).
    """
    opened = open_note(note, verifiers) if parsed is None else verify_note(*parsed, verifiers)
    cp = Checkpoint.parse(opened.text)
    name = cp.origin if log_name is None else log_name
    if not any(sig.name == name for sig in opened.verified):
        raise UnverifiedNoteError(f"checkpoint is not signed by its log key {name!r}")
    return cp, opened
