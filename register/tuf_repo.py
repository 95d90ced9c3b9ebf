"""Per-kindergarten TUF repositories of signed rosters, written with ``tuf.api.metadata``.

Layout under ``REPOS/<kindergarten>/``: ``metadata/N.root.json`` (+ ``root.json``, the newest, which a
device is enrolled with), ``metadata/timestamp.json``, ``metadata/N.snapshot.json``,
``metadata/N.targets.json`` (consistent snapshots), and ``targets/<sha256>.roster.json``.

Key roles, each in its own 0600 file in ``KEYS/`` (generated on first use, never overwritten):

- ``root.key`` — signs ``root`` (which keys may sign what); keep offline, needed only to rotate keys.
- ``targets.key`` — signs ``targets`` (which roster bytes, with their hash); needed to :func:`publish`.
- ``online.key`` — signs ``snapshot`` and ``timestamp``; the only key :meth:`RosterRepository.refresh`
  (run daily) needs, so the register can keep it online while the two above stay with the operator.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from ledger.errors import KeyFileError
from ledger.keys import fsync_dir, read_secret, write_secret
from register.errors import ConfigError

ROOT_KEY, TARGETS_KEY, ONLINE_KEY = "root.key", "targets.key", "online.key"
#: Which roles each key file signs (printed by ``kgate register keys``).
KEY_ROLES: dict[str, tuple[str, ...]] = {
    ROOT_KEY: ("root",),
    TARGETS_KEY: ("targets",),
    ONLINE_KEY: ("snapshot", "timestamp"),
}
TARGET = "roster.json"
#: How long each role's signature holds. The timestamp's day bounds a freeze: a gate that cannot get
#: a fresh timestamp marks its roster stale after it.
EXPIRY = {
    "root": dt.timedelta(days=365),
    "targets": dt.timedelta(days=365),
    "snapshot": dt.timedelta(days=30),
    "timestamp": dt.timedelta(days=1),
}
KINDERGARTEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_JSON = JSONSerializer(compact=False)


class RosterRepoError(ConfigError):
    """A roster cannot be published (bad kindergarten, version going back, unreadable repository)."""


def kindergarten_dir(repos: Path, kindergarten: str) -> Path:
    """The repository directory of ``kindergarten``; refuses names that are not safe path segments."""
    if not KINDERGARTEN.fullmatch(kindergarten) or ".." in kindergarten:
        raise RosterRepoError(f"kindergarten {kindergarten!r} does not match {KINDERGARTEN.pattern}")
    return repos / kindergarten


def repository_id(kindergarten: str) -> str | None:
    """The id ``kindergarten``'s roster repository is keyed by: the device's kindergarten id itself.

    ``kgate register tuf publish --kindergarten K`` and the roster routes (which serve a device only
    its own kindergarten) use the same string; None when it cannot name a repository (not ASCII).
    """
    return kindergarten if KINDERGARTEN.fullmatch(kindergarten) and ".." not in kindergarten else None


def published_root(repos: Path, kindergarten: str) -> bytes | None:
    """The newest ``root.json`` of ``kindergarten``'s repository, or None when nothing was published yet."""
    repo_id = repository_id(kindergarten)
    if repo_id is None:
        return None
    metadata = repos / repo_id / "metadata"
    if not (metadata / "timestamp.json").is_file():
        return None
    try:
        return (metadata / "root.json").read_bytes()
    except FileNotFoundError:
        return None


def load_signer(keys_dir: Path, file: str) -> CryptoSigner:
    """The Ed25519 key in ``keys_dir/file`` (PKCS#8 PEM, 0600), generated on first use."""
    path = keys_dir / file
    if path.exists() or path.is_symlink():
        pem = read_secret(path, "roster key")
        try:
            key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        except ValueError:
            raise KeyFileError(f"roster key {path} is not a PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"roster key {path} is not an Ed25519 key")
    else:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode("ascii")
        write_secret(path, pem, "roster key")
    return CryptoSigner(key)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _unsigned(signed: Any) -> Metadata[Any]:
    """New metadata at version 0: the first save bumps it to 1 (tuf refuses to construct version 0)."""
    md: Metadata[Any] = Metadata(signed)
    md.signed.version = 0
    return md


class RosterRepository:
    """One kindergarten's TUF repository on disk; ``clock`` (POSIX seconds) is injectable for tests."""

    def __init__(
        self, repos: Path, keys_dir: Path, kindergarten: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.kindergarten = kindergarten
        self.dir = kindergarten_dir(repos, kindergarten)
        self.metadata = self.dir / "metadata"
        self.targets = self.dir / "targets"
        self.keys_dir = keys_dir
        self._clock = clock

    def _expires(self, role: str) -> dt.datetime:
        now = dt.datetime.fromtimestamp(int(self._clock()), dt.UTC)
        return now + EXPIRY[role]

    def _write(self, md: Metadata[Any], name: str) -> None:
        _atomic_write(self.metadata / name, md.to_bytes(_JSON))

    def _read(self, name: str) -> Metadata[Any]:
        try:
            return Metadata.from_file(str(self.metadata / name))
        except FileNotFoundError:
            raise RosterRepoError(f"no roster repository for {self.kindergarten!r} at {self.dir}") from None

    @property
    def exists(self) -> bool:
        """Whether the repository was initialised (a root and a timestamp exist)."""
        return (self.metadata / "timestamp.json").is_file()

    def root(self) -> Metadata[Root]:
        """The newest root: what a gate of this kindergarten is enrolled with."""
        return self._read("root.json")

    def _init(self) -> None:
        self.metadata.mkdir(parents=True, exist_ok=True)
        self.targets.mkdir(parents=True, exist_ok=True)
        root = Metadata(Root(expires=self._expires("root"), consistent_snapshot=True))
        for file, roles in KEY_ROLES.items():
            key = load_signer(self.keys_dir, file).public_key
            for role in roles:
                root.signed.add_key(key, role)
        root.sign(load_signer(self.keys_dir, ROOT_KEY))
        self._write(root, "1.root.json")
        self._write(root, "root.json")

    def publish(self, document: bytes, version: int) -> int:
        """Publish roster ``document`` (whose ``version`` must be ``version``); returns the targets version.

        Versions never go back: a version not above the one published is refused. Needs the targets and
        the online key. Writes the target, then targets, snapshot, and the timestamp last.
        """
        from terminal.roster import RosterError, parse_roster  # noqa: PLC0415 - the gate's own validator

        try:
            data = parse_roster(document)
        except RosterError as exc:
            raise RosterRepoError(f"roster for {self.kindergarten!r} not published: {exc}") from None
        if data.version != version:
            raise RosterRepoError(f"roster document says version {data.version}, asked to publish {version}")
        if data.kindergarten not in (None, self.kindergarten):
            raise RosterRepoError(
                f"roster is for kindergarten {data.kindergarten!r}, not {self.kindergarten!r}"
            )
        if not self.exists:
            self._init()
            targets: Metadata[Targets] = _unsigned(Targets(expires=self._expires("targets")))
        else:
            targets = self._read(f"{self._snapshot().signed.meta['targets.json'].version}.targets.json")
            current = targets.signed.targets.get(TARGET)
            published = int(current.unrecognized_fields.get("roster_version", 0)) if current else 0
            if version == published:  # a gate never replaces a version it has: it would refuse this one
                raise RosterRepoError(
                    f"roster version {version} is already published for {self.kindergarten!r}; the gates "
                    f"keep the version they have, so a changed roster needs version {published + 1}"
                )
            if version < published:
                raise RosterRepoError(
                    f"roster version {version} is below the published {published}: versions never go back "
                    f"(publish it as version {published + 1})"
                )
        target = TargetFile.from_data(TARGET, document, ["sha256"])
        target.unrecognized_fields["roster_version"] = version
        _atomic_write(self.targets / f"{target.hashes['sha256']}.{TARGET}", document)
        targets.signed.targets = {TARGET: target}
        targets.signed.version += 1
        targets.signed.expires = self._expires("targets")
        targets.sign(load_signer(self.keys_dir, TARGETS_KEY))
        self._write(targets, f"{targets.signed.version}.targets.json")
        self._resign_online(targets_version=targets.signed.version)
        return targets.signed.version

    def _snapshot(self) -> Metadata[Snapshot]:
        ts: Metadata[Timestamp] = self._read("timestamp.json")
        return self._read(f"{ts.signed.snapshot_meta.version}.snapshot.json")

    def _resign_online(self, *, targets_version: int | None = None, snapshot: bool = True) -> None:
        online = load_signer(self.keys_dir, ONLINE_KEY)
        old_ts: Metadata[Timestamp] | None = self._read("timestamp.json") if self.exists else None
        snap_version = old_ts.signed.snapshot_meta.version if old_ts else 0
        if snapshot:
            snap: Metadata[Snapshot] = (
                self._snapshot() if old_ts else _unsigned(Snapshot(expires=self._expires("snapshot")))
            )
            if targets_version is not None:
                snap.signed.meta["targets.json"] = MetaFile(version=targets_version)
            snap.signed.version += 1
            snap.signed.expires = self._expires("snapshot")
            snap.sign(online)
            self._write(snap, f"{snap.signed.version}.snapshot.json")
            snap_version = snap.signed.version
        ts = old_ts or _unsigned(Timestamp(expires=self._expires("timestamp")))
        ts.signed.snapshot_meta = MetaFile(version=snap_version)
        ts.signed.version += 1
        ts.signed.expires = self._expires("timestamp")
        ts.sign(online)
        self._write(ts, "timestamp.json")

    def refresh(self) -> int:
        """Re-sign the timestamp (and the snapshot when it has less than a week left); online key only."""
        left = self._snapshot().signed.expires - dt.datetime.fromtimestamp(int(self._clock()), dt.UTC)
        self._resign_online(snapshot=left < dt.timedelta(days=7))
        ts: Metadata[Timestamp] = self._read("timestamp.json")
        return ts.signed.version

    def rotate_online_key(self) -> str:
        """Replace the online key: a new root (root key) trusts only the new one; returns its keyid.

        The old key file is kept as ``online.key.revoked-N`` for the record; anything it signs from now
        on is refused by every gate that has seen the new root.
        """
        root: Metadata[Root] = self.root()
        old = load_signer(self.keys_dir, ONLINE_KEY)
        n = root.signed.version
        os.replace(self.keys_dir / ONLINE_KEY, self.keys_dir / f"{ONLINE_KEY}.revoked-{n}")
        new = load_signer(self.keys_dir, ONLINE_KEY)
        for role in KEY_ROLES[ONLINE_KEY]:
            root.signed.revoke_key(old.public_key.keyid, role)
            root.signed.add_key(new.public_key, role)
        root.signed.version += 1
        root.signed.expires = self._expires("root")
        root.sign(load_signer(self.keys_dir, ROOT_KEY))
        self._write(root, f"{root.signed.version}.root.json")
        self._write(root, "root.json")
        self._resign_online()
        return str(new.public_key.keyid)


def publish(
    repos: Path,
    keys_dir: Path,
    kindergarten: str,
    document: bytes,
    version: int,
    *,
    clock: Callable[[], float] = time.time,
) -> int:
    """Publish ``document`` (the register's ``roster_document`` bytes) as ``kindergarten``'s roster."""
    return RosterRepository(repos, keys_dir, kindergarten, clock=clock).publish(document, version)


def key_roles(keys_dir: Path) -> list[dict[str, Any]]:
    """For ``kgate register keys``: each roster key file, the roles it signs, its TUF keyid (if made)."""
    out: list[dict[str, Any]] = []
    for file, roles in KEY_ROLES.items():
        path = keys_dir / file
        keyid = load_signer(keys_dir, file).public_key.keyid if path.exists() else None
        out.append({"file": str(path), "roles": list(roles), "keyid": keyid})
    return out


def dumps(obj: object) -> str:
    """Compact JSON for CLI output."""
    return json.dumps(obj, sort_keys=True)
