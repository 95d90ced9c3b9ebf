"""The device key: an Ed25519 signed-note key generated on the device, kept in a 0600 file.

The file holds the note ``skey`` string (``PRIVATE+KEY+<name>+<hash>+<base64>``). It is created with
``O_EXCL`` at mode 0600, written and fsynced before use; loading refuses files that are not regular,
are group/world accessible, or are owned by another user than the one running kgate (the service
user), so a key copied around with loose permissions stops the service instead of being used.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ledger.errors import BadKeyError, KeyFileError
from ledger.note import Ed25519Signer

MAX_KEY_FILE = 4096


def fsync_dir(path: Path) -> None:
    """Make a directory entry (a new or renamed file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_secret(path: Path, what: str = "device key") -> str:
    """The text of a private-key file, refusing files that are not regular, 0600 and ours."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise KeyFileError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"cannot open {what} {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"{what} {path} is not a regular file")
        if st.st_mode & 0o077:
            raise KeyFileError(
                f"{what} {path} has mode {stat.S_IMODE(st.st_mode):04o}; it must be 0600 (chmod 600 {path})"
            )
        if st.st_uid != os.geteuid():
            raise KeyFileError(
                f"{what} {path} is owned by uid {st.st_uid}, not by the service user (uid {os.geteuid()})"
            )
        raw = os.read(fd, MAX_KEY_FILE + 1)
    finally:
        os.close(fd)
    if len(raw) > MAX_KEY_FILE:
        raise KeyFileError(f"{what} {path} is too large to be a key")
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise KeyFileError(f"{what} {path} is not a signed-note private key") from None


def write_secret(path: Path, text: str, what: str = "device key") -> None:
    """Create a new 0600 key file (never replacing one), fsynced with its directory entry."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{what} {path} already exists; refusing to replace it") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create {what} {path}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)  # the umask cannot loosen it, but make the intent explicit
        os.write(fd, (text + "\n").encode("ascii"))
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise KeyFileError(f"cannot write {what} {path}: {exc.strerror}") from None
    os.close(fd)
    fsync_dir(path.parent)


def load_key(path: Path) -> Ed25519Signer:
    """Read the device key, refusing unsafe files with a message that says how to fix them."""
    try:
        return Ed25519Signer.from_skey(read_secret(path))
    except BadKeyError:
        raise KeyFileError(f"device key {path} is not a valid signed-note private key") from None


def create_key(path: Path, name: str) -> Ed25519Signer:
    """Generate a key named ``name`` into a new 0600 file; refuses to overwrite an existing one."""
    signer = Ed25519Signer.generate(name)
    write_secret(path, signer.skey)
    return signer


def load_or_create_key(path: Path, name: str) -> Ed25519Signer:
    """The key at ``path``, generated on first use; the name must match the log's origin."""
    if not path.exists() and not path.is_symlink():
        return create_key(path, name)
    signer = load_key(path)
    if signer.name != name:
        raise KeyFileError(f"device key {path} is named {signer.name!r}, but the ledger's origin is {name!r}")
    return signer
