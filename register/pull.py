"""Pull: fetch a device's log from its c2sp.org/tlog-tiles server and ingest it exactly like a push.

The register signs its requests with its ``request.key`` (RFC 9421; the device serves only requests
signed by a key it was configured with). :func:`ledger.tileclient.fetch_log` verifies the device-signed
checkpoint, fetches the entry bundles after the size the register already holds and the hash tiles for
the consistency proof, and checks that they reproduce the checkpoint root. The result is turned into
the :class:`~register.ingest.Batch` a push of the same range would carry and handed to the same
:meth:`Register.ingest`: the same verification, the same storage keyed (device, index, leaf hash), the
same cosignature, and the same 409 + alarm on equivocation (the evidence is the push-shaped body plus
``pulled_from``).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import requests

from ledger.note import Ed25519Signer
from ledger.tileclient import PulledLog, fetch_log
from register.errors import Forbidden, TooLarge
from register.ingest import Batch
from register.service import Register
from register.store import Device


@dataclass(frozen=True)
class PullResult:
    """What one pull did: entries fetched from ``start``, the stored size after it, the cosigned note."""

    origin: str
    start: int
    fetched: int
    size: int
    cosigned: str


def _evidence(pulled: PulledLog, origin: str, url: str) -> bytes:
    """The pulled batch as a push body (kept in ``alarms`` if it proves equivocation)."""
    body = {
        "origin": origin,
        "start": pulled.start,
        "entries": [base64.b64encode(e).decode() for e in pulled.entries],
        "checkpoint": pulled.checkpoint_note,
        "old_size": pulled.start,
        "proof": [base64.b64encode(h).decode() for h in pulled.proof],
        "pulled_from": url,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def pull_device(
    register: Register,
    device: Device,
    url: str,
    signer: Ed25519Signer,
    *,
    timeout: float | tuple[float, float] = (5.0, 30.0),
    ca: Path | None = None,
    session: requests.Session | None = None,
) -> PullResult:
    """Fetch ``device``'s log from its pull server at ``url`` and ingest what the register lacks.

    ``signer`` is the register's request key. Raises what :func:`fetch_log` raises (``PulledLogInvalid``
    when the tiles do not verify, ``FetchUnreachable`` on network failure, ``FetchRefused`` when the
    device refuses the signature) and what :meth:`Register.ingest` raises (``Equivocation`` — with an alarm —
    ``Unverifiable``, ``TooLarge``); ``Forbidden`` for a disabled device.
    """
    if device.disabled:
        raise Forbidden(f"device {device.origin} is disabled")
    since, _ = register.state(device)
    pulled = fetch_log(url, signer, since, timeout, device_vkey=device.vkey, ca=ca, session=session)
    if len(pulled.entries) > register.max_batch:
        raise TooLarge(
            f"{len(pulled.entries)} new entries exceed the pull limit of {register.max_batch} "
            "(raise --max-entries)"
        )
    batch = Batch(
        origin=device.origin,
        start=pulled.start,
        entries=tuple(pulled.entries),
        checkpoint=pulled.checkpoint_note,
        old_size=pulled.start,
        proof=tuple(pulled.proof),
    )
    receipt = register.ingest(device, batch, evidence=_evidence(pulled, device.origin, url))
    register.heard_from(device, None)
    return PullResult(device.origin, pulled.start, len(pulled.entries), receipt.size, receipt.cosigned)
