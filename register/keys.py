"""The register's own keys, generated on first use into 0600 files in the state directory.

``cosigner.key`` — the c2sp.org/tlog-cosignature key (type 0x04) whose signature acknowledges pushes;
``request.key`` — an Ed25519 key the register signs its pull requests with (RFC 9421). Both files hold
the note ``skey`` form. Loading refuses files that are not regular, are group/world accessible or are
owned by someone else, so a key with loose permissions stops the register instead of being used.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ledger.errors import BadKeyError
from ledger.keys import fsync_dir
from ledger.note import CosignatureSigner, Ed25519Signer
from register.errors import ConfigError

COSIGNER_FILE = "cosigner.key"
REQUEST_FILE = "request.key"
_MAX = 4096


@dataclass(frozen=True)
class RegisterKeys:
    """The cosigner (acknowledges pushes) and the request-signing key (pulls)."""

    cosigner: CosignatureSigner
    request: Ed25519Signer


def _read_secret(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"cannot open register key {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"register key {path} is not a regular file")
        if st.st_mode & 0o077:
            raise ConfigError(
                f"register key {path} has mode {stat.S_IMODE(st.st_mode):04o}; chmod 600 {path}"
            )
        if st.st_uid != os.geteuid():
            raise ConfigError(f"register key {path} is owned by uid {st.st_uid}, not uid {os.geteuid()}")
        raw = os.read(fd, _MAX + 1)
    finally:
        os.close(fd)
    if len(raw) > _MAX:
        raise ConfigError(f"register key {path} is too large to be a key")
    return raw.decode("ascii", "replace").strip()


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot create register key {path}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (text + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)


def load_or_create_keys(state_dir: Path, name: str | None) -> RegisterKeys:
    """Load both keys from ``state_dir``, generating missing ones named ``name`` (the register's host name).

    An existing key keeps its name; asking for a different ``name`` is an error rather than a silent
    key change, because devices pin the cosigner key.
    """
    out: list[CosignatureSigner | Ed25519Signer] = []
    for file, cls in ((COSIGNER_FILE, CosignatureSigner), (REQUEST_FILE, Ed25519Signer)):
        path = state_dir / file
        if path.exists() or path.is_symlink():
            try:
                signer: CosignatureSigner | Ed25519Signer = cls.from_skey(_read_secret(path))
            except BadKeyError as exc:
                raise ConfigError(f"register key {path}: {exc}") from None
            if name is not None and signer.name != name:
                raise ConfigError(f"register key {path} is named {signer.name!r}, not {name!r}")
        else:
            if name is None:
                raise ConfigError(f"no register key {path}: give --name to generate one")
            signer = cls.generate(name)
            _write_secret(path, signer.skey)
        out.append(signer)
    cosigner, request = out
    assert isinstance(cosigner, CosignatureSigner) and isinstance(request, Ed25519Signer)
    return RegisterKeys(cosigner, request)
