"""A signed webhook for SMS gateways the operator runs: JSON POST, RFC 9421 signature, Idempotency-Key.

Each contact names a gateway (``target``) and a phone number; the dispatcher knows each gateway's URL
(``--webhook NAME=URL``). Requests are signed with the register's request key exactly as the push API
signs (:func:`ledger.httpsig.sign_request`), so a gateway checks them with the register's request vkey.
The body's ``id`` and the ``Idempotency-Key`` header are the outbox row's deterministic key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path

import requests

from kgate.errors import UsageError
from kgate.urls import check_url
from ledger.httpsig import sign_request
from ledger.note import Ed25519Signer
from register.notify.channels.base import Outgoing
from register.notify.channels.http import check_status, post
from register.notify.errors import NotifyConfigError, PermanentFailure


def parse_targets(specs: list[str]) -> dict[str, str]:
    """``NAME=URL`` options into a mapping; URLs are https (http only to loopback)."""
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, url = spec.partition("=")
        if not sep or not name:
            raise NotifyConfigError(f"--webhook {spec!r}: expected NAME=URL")
        try:
            out[name] = check_url(url, f"--webhook {name}")
        except UsageError as exc:
            raise NotifyConfigError(str(exc)) from None
    return out


class WebhookChannel:
    """POSTs ``{"id", "to", "text"}`` to the contact's gateway, signed by ``signer``."""

    name = "webhook"

    def __init__(self, targets: Mapping[str, str], signer: Ed25519Signer, *, ca: Path | None = None) -> None:
        self._targets = dict(targets)
        self._signer = signer
        self._ca = ca
        self._session = requests.Session()

    def send(self, item: Outgoing) -> str | None:
        url = self._targets.get(item.target or "")
        if url is None:
            raise PermanentFailure(f"no webhook gateway {item.target!r} configured (--webhook NAME=URL)")
        body = json.dumps(
            {"id": item.key, "to": item.address, "text": item.message.text}, ensure_ascii=False
        ).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": item.key}
        headers.update(sign_request("POST", url, headers, body, self._signer, now=int(time.time())))
        what = f"webhook {item.target}"
        resp = post(self._session, url, what, ca=self._ca, data=body, headers=headers)
        check_status(resp, what)
        return item.key

    def close(self) -> None:
        self._session.close()
