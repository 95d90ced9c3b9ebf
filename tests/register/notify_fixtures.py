"""Real servers on loopback for the notification tests: an SMTP sink (aiosmtpd), a webhook receiver that
checks RFC 9421 signatures, a Bot-API-like HTTPS server; and a kindergarten with subscribed guardians."""

from __future__ import annotations

import email
import email.policy
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from ledger.clock import FakeClock
from ledger.httpsig import ReplayCache, verify_request
from ledger.keys import load_key
from ledger.note import Ed25519Signer
from ledger.store import open_ledger
from register.notify.contacts import import_contacts, parse_contacts
from register.roster_csv import parse_csv
from register.store import Store
from register.store.roster import import_roster
from tests.conftest import free_port
from tests.register.conftest import ORIGIN, Device

ROSTER = (
    "kind,id,name,group,consent_face,badge,guardian_of\n"
    "child,C0,Аружан Серікқызы,Күншуақ,no,,\n"
    "child,C1,Мария Иванова,Солнышко,no,,\n"
    "child,C2,Tom Smith,Sun,no,,\n"
    "guardian,g-0,Серік Ахметов,,,,C0\n"
    "guardian,g-1,Иван Иванов,,,,C1\n"
    "guardian,g-2,Jane Smith,,,,C2\n"
)
CONTACTS = (
    "guardian,lang,opt_in,email,telegram,sms_gateway,phone\n"
    "g-0,kk,yes,serik@example.kz,,sms,+77011234567\n"
    "g-1,ru,no,ivan@example.kz,,,\n"
    "g-2,en,yes,jane@example.com,,,\n"
)


def subscribe(store: Store, kindergarten: str = "K1") -> None:
    """The roster of C0..C2 with guardians g-0 (kk, email + SMS), g-1 (opted out), g-2 (en, email)."""
    import_roster(store, kindergarten, parse_csv(ROSTER.encode()))
    import_contacts(store, kindergarten, parse_contacts(CONTACTS.encode()))


def device_at(path: Path, time_ms: int, origin: str = ORIGIN) -> Device:
    """A device ledger whose clock starts at ``time_ms``."""
    clock = FakeClock(time_ms)
    ledger = open_ledger(path / "ledger.db", origin=origin, key_path=path / "device.key", clock=clock)
    return Device(ledger, load_key(path / "device.key"), clock)


def day(dev: Device) -> None:
    """In for C0, C1, C2; then C0 out, picked up by g-0."""
    for child in ("C0", "C1", "C2"):
        dev.ledger.append("in", child=child, method="qr", evidence={"distance_milli": 412})
        dev.clock.advance(60)
    dev.ledger.append("out", child="C0", method="qr", evidence={"guardian": "g-0", "guardian_badge": "X"})


class _Sink:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@dataclass
class SmtpSink:
    host: str
    port: int
    handler: _Sink

    @property
    def messages(self) -> list[EmailMessage]:
        with self.handler.lock:
            return list(self.handler.messages)

    def message_ids(self) -> list[str]:
        return [str(m["Message-ID"]) for m in self.messages]


@contextmanager
def smtp_sink(tls: ssl.SSLContext | None = None) -> Iterator[SmtpSink]:
    """A real SMTP server on 127.0.0.1; with ``tls`` it requires STARTTLS before MAIL."""
    handler = _Sink()
    port = free_port()
    kwargs: dict[str, Any] = {}
    if tls is not None:
        kwargs = {"tls_context": tls, "require_starttls": True}
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield SmtpSink("127.0.0.1", port, handler)
    finally:
        controller.stop()


@dataclass
class HttpReceiver:
    """What a loopback HTTP(S) server received, and what it answers next (``replies``, then 200)."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    replies: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


@contextmanager
def http_receiver(
    *, signer: Ed25519Signer | None = None, tls: ssl.SSLContext | None = None, telegram: bool = False
) -> Iterator[HttpReceiver]:
    """A webhook receiver (checks the RFC 9421 signature by ``signer``'s key) or a Bot API look-alike."""
    port = free_port()
    rec = HttpReceiver(f"{'https' if tls else 'http'}://127.0.0.1:{port}")
    replay = ReplayCache()
    next_id = iter(range(1000, 10**6))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if signer is not None:
                verifier = signer.verifier()
                try:
                    verify_request(
                        "POST", rec.url + self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                        lambda _k: verifier, now=int(time.time()), replay=replay,
                    )  # fmt: skip
                except Exception as exc:
                    rec.rejected.append(str(exc))
                    self._answer(401, {"error": str(exc)})
                    return
            rec.requests.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
            status, answer = rec.replies.pop(0) if rec.replies else (200, {})
            if telegram and status == 200 and not answer:
                answer = {"ok": True, "result": {"message_id": next(next_id), "chat": {"id": 1}}}
            self._answer(status, answer)

        def _answer(self, status: int, answer: dict[str, Any]) -> None:
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
