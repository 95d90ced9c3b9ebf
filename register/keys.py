"""The register's own keys, generated on first use into 0600 files in the state directory.

``cosigner.key`` — the c2sp.org/tlog-cosignature key (type 0x04) whose signature acknowledges pushes;
``request.key`` — an Ed25519 key the register signs its pull requests with (RFC 9421). Both files hold
the note ``skey`` form. Loading refuses files that are not regular, are group/world accessible or are
owned by someone else, so a key with loose permissions stops the register instead of being used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ledger.errors import BadKeyError
from ledger.keys import read_secret, write_secret
from ledger.note import CosignatureSigner, Ed25519Signer
from register.errors import ConfigError

COSIGNER_FILE = "cosigner.key"
REQUEST_FILE = "request.key"


@dataclass(frozen=True)
class RegisterKeys:
    """The cosigner (acknowledges pushes) and the request-signing key (pulls)."""

    cosigner: CosignatureSigner
    request: Ed25519Signer


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
                signer: CosignatureSigner | Ed25519Signer = cls.from_skey(read_secret(path, "register key"))
            except BadKeyError as exc:
                raise ConfigError(f"register key {path}: {exc}") from None
            if name is not None and signer.name != name:
                raise ConfigError(f"register key {path} is named {signer.name!r}, not {name!r}")
        else:
            if name is None:
                raise ConfigError(f"no register key {path}: give --name to generate one")
            signer = cls.generate(name)
            write_secret(path, signer.skey, "register key")
        out.append(signer)
    cosigner, request = out
    assert isinstance(cosigner, CosignatureSigner) and isinstance(request, Ed25519Signer)
    return RegisterKeys(cosigner, request)
