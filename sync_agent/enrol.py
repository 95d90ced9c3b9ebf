"""``kgate enrol``: the device side of enrolment (docs/rosters.md, "Enrolment").

1. ``POST /v1/enrol/challenge`` with the token (``Authorization: Bearer``) and, if the device already has
   a key, its vkey; the register answers with a fresh challenge and the origin it assigns.
2. The device makes its key named with that origin (or loads the existing one); the private key never
   leaves the device.
3. ``POST /v1/enrol`` with the challenge, the vkey and the signature of :func:`proof_message`; the
   register answers with the identity, which is written to ``STATE/enrolment.json`` and ``STATE/sync.toml``,
   and with the kindergarten's roster repository: its id goes into ``sync.toml`` (``kindergarten``, with
   ``roster_db``), its root metadata to ``STATE/roster-tuf/root.json`` — the gate's trust anchor for
   rosters. Before the first roster is published there is no root yet; the agent fetches it then.

Every request has a timeout, TLS is verified (``--ca``), plain http goes only to loopback, redirects are
not followed, answers are size-capped.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import requests

from kgate.errors import UsageError
from kgate.urls import check_url
from ledger.enrolment import TOKEN_PREFIX, proof_message
from ledger.errors import BadKeyError
from ledger.keys import fsync_dir, load_key, load_or_create_key
from ledger.note import CosignatureVerifier, Ed25519Signer, Ed25519Verifier
from sync_agent.client import _json_object, _read_capped, _short
from sync_agent.errors import BadResponseError, RejectedError, TransportError
from sync_agent.roster_update import ROOT_FILE, TUF_DIR, check_root, install_root

IDENTITY_FILE: Final = "enrolment.json"
CONFIG_FILE: Final = "sync.toml"
ROSTER_DB: Final = "roster.db"  # the terminal's default roster database (terminal/config.py)
KEY_PROOF_DOMAIN: Final = b"kgate device key proof v1\n"
_KEY_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)


def key_proof_message(challenge: str, vkey: str) -> bytes:
    """The bytes a device signs to prove, to ``kgate decommission``, that it holds the key ``vkey``.

    ``challenge`` is the technician's fresh nonce (32 random bytes, base64url); the domain line keeps the
    signature from being valid as a ledger note, an HTTP signature or an enrolment proof.
    """
    if not _KEY_CHALLENGE.fullmatch(challenge):
        raise ValueError("the key proof's challenge is not 32 random bytes in base64url")
    if "\n" in vkey or not vkey.isascii():
        raise ValueError("the key proof's vkey is not one ASCII line")
    return KEY_PROOF_DOMAIN + f"{challenge}\n{vkey}\n".encode("ascii")


def prove_key(key: Path, challenge: str) -> dict[str, str]:
    """The device's side: its vkey and its signature over :func:`key_proof_message` (run on the device)."""
    signer = load_key(key)
    sig = signer.sign(key_proof_message(challenge, signer.vkey))
    return {"vkey": signer.vkey, "signature": base64.b64encode(sig).decode("ascii")}


def check_key_proof(challenge: str, vkey: str, signature: str) -> Ed25519Verifier | None:
    """The verifier of ``vkey`` if ``signature`` signs the proof of ``challenge`` with it, else None."""
    try:
        verifier = Ed25519Verifier.from_vkey(vkey)
        sig = base64.b64decode(signature, validate=True)
        return verifier if verifier.verify(key_proof_message(challenge, verifier.vkey), sig) else None
    except (BadKeyError, ValueError):
        return None


@dataclass(frozen=True)
class Enrolled:
    """The identity the register gave this device, as written to ``STATE/enrolment.json``."""

    origin: str
    kindergarten: str
    gate: str
    register: str
    register_url: str
    register_vkey: str
    replaced: str | None
    roster_repository: str | None = None  # the kindergarten's roster repository id (None: none possible)
    roster_root: str | None = None  # the installed trusted root.json (None: no roster published yet)

    @property
    def roster_note(self) -> str:
        """One line on how this gate gets its rosters, for ``kgate enrol`` to print."""
        if self.roster_repository is None:
            return f"no rosters: kindergarten {self.kindergarten!r} cannot name a roster repository"
        if self.roster_root is None:
            return (
                f"no roster published yet for {self.roster_repository!r}: "
                "the sync agent fetches its root with the first roster"
            )
        return f"roster trust root for {self.roster_repository!r} installed at {self.roster_root}"


def _post(
    url: str, token: str, body: dict[str, Any], ca: Path | None, timeout: tuple[float, float]
) -> dict[str, Any]:
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "User-Agent": "kgate-enrol",
    }
    try:
        resp = requests.post(
            url,
            data=json.dumps(body).encode(),
            headers=headers,
            timeout=timeout,
            verify=str(ca) if ca is not None else True,
            allow_redirects=False,
            stream=True,
        )
        try:
            raw = _read_capped(resp)
        finally:
            resp.close()
    except requests.exceptions.SSLError as exc:
        raise TransportError(f"TLS to {url} failed: {_short(exc)}") from None
    except requests.exceptions.RequestException as exc:
        raise TransportError(f"{url}: {_short(exc)}") from None
    data = _json_object(raw)
    if resp.status_code != 200:
        detail = data.get("detail") or raw[:200].decode("utf-8", "replace")
        raise RejectedError(
            f"the register refused the enrolment (HTTP {resp.status_code}): {detail}", resp.status_code
        )
    if not data:
        raise BadResponseError(f"{url}: answer is not a JSON object")
    return data


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > 1000:
        raise BadResponseError(f"the register's answer has no valid {key!r}")
    return value


def enrol(
    register_url: str,
    token: str,
    *,
    state: Path,
    key: Path | None = None,
    ca: Path | None = None,
    timeout: tuple[float, float] = (5.0, 30.0),
) -> Enrolled:
    """Enrol this device with the register; idempotent for the same key. See the module docstring."""
    base = check_url(register_url, "register URL")
    token = token.strip()
    if not token.startswith(TOKEN_PREFIX) or not token.isascii() or len(token) > 200:
        raise UsageError(f"--token does not look like an enrolment token (it starts with {TOKEN_PREFIX})")
    if ca is not None and not ca.is_file():
        raise UsageError(f"CA bundle {ca} does not exist")
    key_path = key or state / "device.key"
    existing = load_key(key_path) if key_path.exists() or key_path.is_symlink() else None
    answer = _post(
        base + "/v1/enrol/challenge", token, {"vkey": existing.vkey if existing else None}, ca, timeout
    )
    origin, challenge, name = (
        _text(answer, "origin"),
        _text(answer, "challenge"),
        _text(answer, "register_name"),
    )
    if not origin.startswith(name + "/kgate/"):
        raise BadResponseError(f"the register {name!r} assigned an origin outside its prefix: {origin!r}")
    signer: Ed25519Signer = load_or_create_key(key_path, origin)  # never leaves the device
    digest = hashlib.sha256(token.encode()).hexdigest()
    sig = signer.sign(proof_message(name, origin, digest, challenge, signer.vkey))
    body = {"challenge": challenge, "vkey": signer.vkey, "signature": base64.b64encode(sig).decode()}
    ident = _post(base + "/v1/enrol", token, body, ca, timeout)
    if _text(ident, "origin") != origin:
        raise BadResponseError(
            f"the register answered with origin {ident.get('origin')!r}, expected {origin!r}"
        )
    vkey = _text(ident, "cosigner_vkey")
    try:
        if CosignatureVerifier.from_vkey(vkey).name != name:
            raise BadResponseError(f"the register's cosigner key is not named {name!r}")
    except BadKeyError as exc:
        raise BadResponseError(f"the register's cosigner key is invalid: {exc}") from None
    replaced = ident.get("replaced")
    repo_id, root = _roster_trust(ident)
    result = Enrolled(
        origin, _text(ident, "kindergarten"), _text(ident, "gate"), name, base, vkey,
        replaced if isinstance(replaced, str) else None, repo_id,
    )  # fmt: skip
    if root is not None:
        result = replace(result, roster_root=str(_install_root(state, root)))
    _write_state(state, result, key_path, ca)
    return result


def _roster_trust(ident: dict[str, Any]) -> tuple[str | None, bytes | None]:
    """The roster repository id and root.json bytes from the register's answer, checked before use."""
    repo_id, root = ident.get("roster_repository"), ident.get("roster_root")
    if repo_id is not None and (not isinstance(repo_id, str) or not repo_id or len(repo_id) > 64):
        raise BadResponseError("the register's answer has no valid 'roster_repository'")
    if root is None:
        return repo_id, None
    if repo_id is None or not isinstance(root, str):
        raise BadResponseError("the register's answer has a 'roster_root' without a roster repository")
    data = root.encode("utf-8")
    try:
        check_root(data)
    except ValueError as exc:
        raise BadResponseError(f"the register's roster root metadata is invalid: {exc}") from None
    return repo_id, data


def _install_root(state: Path, root: bytes) -> Path:
    """Install the trusted roster root unless the gate already has one (then TUF rotation updates it)."""
    path = state / TUF_DIR / ROOT_FILE
    if path.exists():
        return path.resolve()
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    return install_root(state, root).resolve()


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _toml(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _write_state(state: Path, e: Enrolled, key_path: Path, ca: Path | None) -> None:
    """``enrolment.json`` (the identity) and ``sync.toml`` (what ``kgate sync run --config`` reads)."""
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    _atomic_write(
        state / IDENTITY_FILE, json.dumps(e.__dict__, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    )
    lines = [
        f"register = {_toml(e.register_url)}",
        f"register_vkey = {_toml(e.register_vkey)}",
        f"key = {_toml(str(key_path.resolve()))}",
    ]
    if ca is not None:
        lines.append(f"ca = {_toml(str(ca.resolve()))}")
    if e.roster_repository is not None:  # kgate sync run updates the terminal's roster over TUF
        lines.append(f"roster_db = {_toml(str((state / ROSTER_DB).resolve()))}")
        lines.append(f"kindergarten = {_toml(e.roster_repository)}")
        lines.append(f"roster_tuf = {_toml(str((state / TUF_DIR).resolve()))}")
    _atomic_write(state / CONFIG_FILE, "# written by kgate enrol\n" + "\n".join(lines) + "\n")
