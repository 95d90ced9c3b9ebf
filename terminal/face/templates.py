"""Face templates at rest: 128-d descriptors (never images), AES-GCM encrypted, in a small SQLite file.

Each row holds one template: ``tag`` (HMAC of the child id under the key, so a copied file does not even
say who is enrolled), a random 96-bit ``nonce`` and the AES-256-GCM ciphertext of the child id and the
128 float32 values, authenticated together with the tag (rows cannot be moved between children). The
key is a 0600 file beside the device key (``face.key``), read and created with the device key's own
rules (:func:`ledger.keys.read_secret` / :func:`~ledger.keys.write_secret`). Without it the file is
noise; with a wrong key opening fails with one clear line.

Deletion is real: ``PRAGMA secure_delete`` overwrites freed content, the journal is a rollback journal
(no WAL keeping old pages) and :meth:`TemplateStore.forget` / :meth:`TemplateStore.retain` VACUUM.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import sqlite3
import struct
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Self

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.errors import KeyFileError
from ledger.keys import read_secret, write_secret
from ledger.sqlite import open_durable, transaction
from terminal.face.errors import TemplateStoreError
from terminal.face.match import Gallery
from terminal.roster import FACES_DB, Child

KEY_PREFIX = "KGATE-FACE-KEY-1+"
KEY_WHAT = "face template key"
WHAT = "face template database"
DB_NAME = FACES_DB
KEY_NAME = "face.key"
_CHECK = b"kgate face template key check v1"
_AAD = b"kgate-face-template-v1:"
_DIM = 128
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS templates (
    id INTEGER PRIMARY KEY, tag BLOB NOT NULL, nonce BLOB NOT NULL, ct BLOB NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS templates_tag ON templates (tag);
"""


def _subkeys(master: bytes) -> tuple[bytes, bytes]:
    """(encryption key, tag key), derived so one secret file serves both purposes."""
    enc = hmac.new(master, b"kgate face encrypt", hashlib.sha256).digest()
    tag = hmac.new(master, b"kgate face tag", hashlib.sha256).digest()
    return enc, tag


def load_face_key(path: Path) -> bytes:
    """The 32-byte master key in ``path`` (0600, ours, regular: the device key's rules)."""
    try:
        text = read_secret(path, KEY_WHAT)
    except KeyFileError as exc:
        raise TemplateStoreError(str(exc)) from None
    if not text.startswith(KEY_PREFIX):
        raise TemplateStoreError(f"{KEY_WHAT} {path} is not a kgate face key")
    try:
        key = base64.b64decode(text[len(KEY_PREFIX) :], validate=True)
    except ValueError:
        raise TemplateStoreError(f"{KEY_WHAT} {path} is not a kgate face key") from None
    if len(key) != 32:
        raise TemplateStoreError(f"{KEY_WHAT} {path} is not a kgate face key")
    return key


def create_face_key(path: Path) -> bytes:
    """Generate a new key into a new 0600 file (never replacing one)."""
    key = os.urandom(32)
    try:
        write_secret(path, KEY_PREFIX + base64.b64encode(key).decode("ascii"), KEY_WHAT)
    except KeyFileError as exc:
        raise TemplateStoreError(str(exc)) from None
    return key


class TemplateStore:
    """The encrypted templates of one terminal. Open with :func:`open_templates`."""

    def __init__(self, conn: sqlite3.Connection, path: Path, key: bytes) -> None:
        self._conn = conn
        self.path = path
        self._enc = AESGCM(_subkeys(key)[0])
        self._tag_key = _subkeys(key)[1]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    # -- crypto ---------------------------------------------------------------------------------------
    def tag(self, child_id: str) -> bytes:
        """The row tag of ``child_id``: 16 bytes of HMAC-SHA256, meaningless without the key."""
        return hmac.new(self._tag_key, child_id.encode("utf-8"), hashlib.sha256).digest()[:16]

    def _seal(self, child_id: str, vector: npt.ArrayLike) -> tuple[bytes, bytes, bytes]:
        values = np.asarray(vector, dtype="<f4").reshape(_DIM)
        if not np.all(np.isfinite(values)):
            raise TemplateStoreError("a template must be 128 finite numbers")
        ident = child_id.encode("utf-8")
        plain = struct.pack("<B", len(ident)) + ident + values.tobytes()
        tag = self.tag(child_id)
        nonce = os.urandom(12)
        return tag, nonce, self._enc.encrypt(nonce, plain, _AAD + tag)

    def _open(self, tag: bytes, nonce: bytes, ct: bytes) -> tuple[str, npt.NDArray[np.float32]]:
        try:
            plain = self._enc.decrypt(nonce, ct, _AAD + tag)
        except InvalidTag:
            raise TemplateStoreError(f"a template in {self.path} fails authentication (tampered)") from None
        n = plain[0]
        ident = plain[1 : 1 + n].decode("utf-8")
        values = np.frombuffer(plain[1 + n :], dtype="<f4").astype(np.float32)
        return ident, values

    # -- operations -----------------------------------------------------------------------------------
    def add(self, child_id: str, vectors: Iterable[npt.ArrayLike]) -> int:
        """Store ``child_id``'s templates in one transaction; returns how many."""
        rows = [self._seal(child_id, v) for v in vectors]
        with self._transaction():
            self._conn.executemany("INSERT INTO templates (tag, nonce, ct) VALUES (?, ?, ?)", rows)
        return len(rows)

    def count(self, child_id: str | None = None) -> int:
        """Templates stored (for ``child_id`` only, if given)."""
        if child_id is None:
            return int(self._conn.execute("SELECT count(*) FROM templates").fetchone()[0])
        query = "SELECT count(*) FROM templates WHERE tag = ?"
        return int(self._conn.execute(query, (self.tag(child_id),)).fetchone()[0])

    def gallery(self, children: Iterable[str] | None = None) -> Gallery:
        """Decrypt the templates (of ``children`` only, if given) into a :class:`Gallery`."""
        wanted = None if children is None else {self.tag(c) for c in children}
        labels: list[str] = []
        vectors: list[npt.NDArray[np.float32]] = []
        for tag, nonce, ct in self._conn.execute("SELECT tag, nonce, ct FROM templates ORDER BY id"):
            if wanted is not None and tag not in wanted:
                continue
            ident, values = self._open(tag, nonce, ct)
            labels.append(ident)
            vectors.append(values)
        return Gallery(labels, np.array(vectors, dtype=np.float32).reshape(-1, _DIM))

    def version(self) -> int:
        """A 48-bit hash of the whole template set: changes with every enrolment, forget or retention."""
        digest = hashlib.sha256()
        for tag, ct in self._conn.execute("SELECT tag, ct FROM templates ORDER BY tag, ct"):
            digest.update(tag)
            digest.update(hashlib.sha256(ct).digest())
        return int.from_bytes(digest.digest()[:6], "big")

    def forget(self, child_id: str) -> int:
        """Delete every template of ``child_id`` and overwrite the freed pages; returns rows removed."""
        return self._delete_tags([self.tag(child_id)])

    def retain(self, allowed: Iterable[str]) -> int:
        """Delete the templates of every child not in ``allowed`` (the consenting roster); rows removed."""
        keep = {self.tag(c) for c in allowed}
        tags = [row[0] for row in self._conn.execute("SELECT DISTINCT tag FROM templates")]
        return self._delete_tags([t for t in tags if t not in keep])

    def _delete_tags(self, tags: Sequence[bytes]) -> int:
        if not tags:
            return 0
        with self._transaction():
            removed = sum(
                self._conn.execute("DELETE FROM templates WHERE tag = ?", (t,)).rowcount for t in tags
            )
        self._conn.execute("VACUUM")
        return removed

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._conn, self.path, what=WHAT)


def open_templates(db_path: Path | str, key_path: Path | str, *, create: bool = True) -> TemplateStore:
    """Open the template database with its key. A new database gets a new key (if ``create``); an
    existing one must come with the key it was made with, else :class:`TemplateStoreError`."""
    db_path, key_path = Path(db_path), Path(key_path)
    is_new = not db_path.exists()
    if is_new and not create:
        raise TemplateStoreError(f"no face template database at {db_path}")
    if is_new:
        db_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # A rollback journal, not a WAL: with secure_delete a forgotten template leaves no old page behind.
    conn = open_durable(db_path, what=WHAT, journal="delete")
    try:
        conn.execute("PRAGMA secure_delete = ON")
        conn.executescript(_SCHEMA)
        if is_new:
            os.chmod(db_path, 0o600)
        check = conn.execute("SELECT value FROM meta WHERE key = 'check'").fetchone()
        if check is None:
            key = load_face_key(key_path) if key_path.exists() else create_face_key(key_path)
            store = TemplateStore(conn, db_path, key)
            nonce = os.urandom(12)
            sealed = nonce + store._enc.encrypt(nonce, _CHECK, None)
            conn.execute("INSERT INTO meta VALUES ('check', ?)", (sealed,))
            return store
        if not key_path.exists():
            raise TemplateStoreError(
                f"{KEY_WHAT} {key_path} does not exist; the templates in {db_path} cannot be read without it"
            )
        key = load_face_key(key_path)
        store = TemplateStore(conn, db_path, key)
        try:
            store._enc.decrypt(check[0][:12], check[0][12:], None)
        except InvalidTag:
            raise TemplateStoreError(f"{KEY_WHAT} {key_path} is not the key of {db_path}") from None
        return store
    except BaseException:
        conn.close()
        raise


def retain_for_roster(db_path: Path | str, key_path: Path | str, consenting: Iterable[str]) -> int:
    """The retention step run whenever a roster is installed: keep only consenting children's templates.

    A terminal without a template database has nothing to prune (returns 0).
    """
    if not Path(db_path).exists():
        return 0
    with open_templates(db_path, key_path, create=False) as store:
        return store.retain(consenting)


def prune_for_roster(roster_db: Path, children: Iterable[Child], key_path: Path | None = None) -> int:
    """Retention when a roster is installed: the template database beside ``roster_db`` keeps only
    children who are in the roster with face consent; returns how many children were removed."""
    consenting = [c.id for c in children if c.consent_face]
    db = roster_db.with_name(DB_NAME)
    return retain_for_roster(db, key_path or roster_db.with_name(KEY_NAME), consenting)
