"""Pull: the device serves its log read-only in the c2sp.org/tlog-tiles layout; the register fetches it.

Server (:class:`PullServer`): ``GET <prefix>/checkpoint``, ``<prefix>/tile/<L>/<N>[.p/<W>]`` (hash tiles,
height 8, from the ledger's stored hashes) and ``<prefix>/tile/entries/<N>[.p/<W>]`` (entry bundles of
the exact stored bytes). Every request must carry an RFC 9421 signature by one of the register's
request keys, fresh and never seen before; anything else is answered 401. Stdlib
``ThreadingHTTPServer``: GET only, no request bodies, bounded request line and headers, a socket
timeout per connection, at most ``max_connections`` connections (threads) at once (the next ones get
503 and are closed), optional TLS. The accept loop only accepts TCP: the TLS handshake runs in the
connection's own thread under a total deadline (``HANDSHAKE_TIMEOUT``), so a client that stalls its
handshake holds one slot for a few seconds, never the accept loop.

The client that fetches and verifies such a log is :mod:`ledger.tileclient` (the register uses it).
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from ledger.errors import LedgerError
from ledger.httpsig import ReplayCache, SignatureRejected, keyid_of, verify_request
from ledger.note import Ed25519Verifier
from ledger.store import LedgerReader
from ledger.tiles import (
    TILE_WIDTH,
    TileError,
    encode_bundle,
    encode_hash_tile,
    parse_tile_path,
    tile_addresses,
    tile_exists,
)

log = logging.getLogger(__name__)

CONNECTION_TIMEOUT: Final = 15.0  # seconds a client may take to send its request


class PullService:
    """The request logic, independent of the HTTP server: authenticate, route, read the ledger."""

    def __init__(
        self,
        reader: LedgerReader,
        register_keys: Iterable[Ed25519Verifier],
        *,
        prefix: str = "",
        replay: ReplayCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.reader = reader
        self._keys = {keyid_of(k.name, k.key_hash): k for k in register_keys}
        if not self._keys:
            raise ValueError("the pull server needs at least one register request key")
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self._replay = replay or ReplayCache()
        self._clock = clock

    def handle(self, method: str, target: str, headers: Any) -> tuple[int, str, bytes]:
        """Answer one request: (status, content type, body)."""
        path = urlsplit(target).path
        if method != "GET":
            return _error(405, "method_not_allowed", "the log is read-only: GET only")
        try:
            verify_request(
                "GET", target, headers, b"", self._keys.get, now=int(self._clock()), replay=self._replay
            )
        except SignatureRejected as exc:
            log.warning("pull request refused: %s", exc.reason)
            return _error(401, "unauthorized", exc.reason)
        if not path.startswith(self.prefix + "/"):
            return _error(404, "not_found", "no such resource")
        rest = path[len(self.prefix) + 1 :]
        try:
            if rest == "checkpoint":
                return 200, "text/plain; charset=utf-8", self.reader.checkpoint().encode()
            ref = parse_tile_path(rest)
            if not tile_exists(ref, self.reader.size):
                return _error(404, "not_found", "no such tile (yet)")
            if ref.level is None:
                first = ref.index * TILE_WIDTH
                body = encode_bundle(self.reader.entries(first, first + ref.width))
            else:
                body = encode_hash_tile(self.reader.read_hashes(tile_addresses(ref)))
        except TileError as exc:
            return _error(404, "not_found", str(exc))
        except LedgerError as exc:
            log.error("pull: cannot read the ledger: %s", exc)
            return _error(503, "unavailable", "ledger temporarily unreadable")
        return 200, "application/octet-stream", body


def _error(status: int, code: str, detail: str) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps({"error": code, "detail": detail}).encode()


class _Handler(BaseHTTPRequestHandler):
    server: PullServer
    timeout = CONNECTION_TIMEOUT
    protocol_version = "HTTP/1.1"
    server_version = "kgate-pull"
    sys_version = ""

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_POST(self) -> None:
        self._answer()

    do_PUT = do_DELETE = do_PATCH = do_POST

    def _answer(self, send_body: bool = True) -> None:
        if self.headers.get("Content-Length") not in (None, "0") or self.headers.get("Transfer-Encoding"):
            status, ctype, body = _error(400, "bad_request", "requests must not have a body")
            self.close_connection = True
        else:
            status, ctype, body = self.server.service.handle(self.command, self.path, self.headers)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if send_body and self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("pull %s: " + format, self.address_string(), *args)


def _canned(status: str, code: str, detail: str, *headers: str) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, sent on raw sockets outside the handler."""
    body = json.dumps({"error": code, "detail": detail}).encode() + b"\n"
    head = [f"HTTP/1.1 {status}", "Content-Type: application/json", *headers, "Connection: close"]
    return ("\r\n".join([*head, f"Content-Length: {len(body)}", "", ""])).encode() + body


_BUSY: Final = _canned("503 Service Unavailable", "busy", "too many connections", "Retry-After: 5")
_PLAIN_ON_TLS: Final = _canned("400 Bad Request", "tls_required", "this port speaks TLS: use https")
MAX_CONNECTIONS: Final = 16  # concurrent connections, each one thread; a register needs one or two
HANDSHAKE_TIMEOUT: Final = 5.0  # seconds a TLS client has for its whole handshake (a total, not per read)
TLS_BUSY_ANSWERS: Final = 4  # TLS connections beyond the cap handshaken at once just to be told 503
_TLS_HANDSHAKE_RECORD: Final = 0x16  # first byte of every TLS ClientHello


class PullServer(ThreadingHTTPServer):
    """The tiles server on ``(host, port)`` (port 0 picks a free one; see ``server_address``)."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(
        self,
        service: PullService,
        host: str,
        port: int,
        *,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        max_connections: int = MAX_CONNECTIONS,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        if max_connections < 1 or handshake_timeout <= 0:
            raise ValueError("max_connections and handshake_timeout must be positive")
        self.service = service
        self._slots = threading.BoundedSemaphore(max_connections)
        self._busy_answers = threading.BoundedSemaphore(TLS_BUSY_ANSWERS)
        self._handshake_timeout = handshake_timeout
        self._tls: ssl.SSLContext | None = None
        super().__init__((host, port), _Handler)
        if tls_cert is not None:
            # the listening socket stays plain: wrapping it would run every handshake inside accept()
            self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._tls.minimum_version = ssl.TLSVersion.TLSv1_2
            self._tls.load_cert_chain(tls_cert, tls_key)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve in a new thread if a slot is free; otherwise answer 503 and close, never blocking here."""
        if self._slots.acquire(blocking=False):
            try:
                super().process_request(request, client_address)
            except BaseException:
                self._slots.release()
                raise
            return
        log.warning("pull: refusing a connection from %s: too many connections", client_address[0])
        if self._tls is None:
            try:
                request.settimeout(1.0)
                request.sendall(_BUSY)
            except OSError:
                pass
        elif self._busy_answers.acquire(blocking=False):  # the 503 needs a handshake: in a thread
            try:
                threading.Thread(
                    target=self._answer_busy_over_tls, args=(request, client_address), daemon=True
                ).start()
            except BaseException:
                self._busy_answers.release()
                raise
            return
        self.shutdown_request(request)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """The connection's thread: TLS handshake (if any), then HTTP; the slot is returned either way."""
        try:
            if self._tls is not None:
                request = self._secure(request, client_address)
            if request is not None:
                super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _answer_busy_over_tls(self, request: socket.socket, client_address: Any) -> None:
        try:
            tls = self._secure(request, client_address)
            if tls is not None:
                try:
                    tls.settimeout(1.0)
                    tls.sendall(_BUSY)
                except OSError:
                    pass
                self.shutdown_request(tls)
        finally:
            self._busy_answers.release()

    def _secure(self, conn: socket.socket, client_address: Any) -> ssl.SSLSocket | None:
        """Handshake within the deadline; otherwise one log line, the socket closed, None.

        A client whose first byte is not a TLS handshake record (plain HTTP) gets a plain 400 saying so.
        """
        assert self._tls is not None
        peer = client_address[0]
        deadline = time.monotonic() + self._handshake_timeout
        tls: ssl.SSLSocket | None = None
        done = False
        try:
            conn.settimeout(self._handshake_timeout)
            first = conn.recv(1, socket.MSG_PEEK)
            if not first:
                log.warning("pull: %s closed its connection before a TLS handshake", peer)
            elif first[0] != _TLS_HANDSHAKE_RECORD:
                log.warning("pull: %s spoke plain HTTP to the TLS port: answered 400, closed", peer)
                _answer_plain(conn, deadline)
            else:
                conn.settimeout(max(deadline - time.monotonic(), 0.001))  # one deadline, all reads
                tls = self._tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
                tls.do_handshake()
                tls.settimeout(None)  # the handler sets its own per-read timeout
                done = True
                return tls
        except (OSError, ValueError) as exc:
            log.warning("pull: TLS handshake with %s failed: %s", peer, _why(exc))
        finally:
            if not done:
                self.shutdown_request(tls if tls is not None else conn)
        return None

    def start(self) -> threading.Thread:
        """Serve in a daemon thread (tests, or beside the push loop)."""
        thread = threading.Thread(target=self.serve_forever, name="kgate-pull", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def _answer_plain(conn: socket.socket, deadline: float) -> None:
    """Tell a plain-HTTP client on the TLS port, then read what it sent so the close is a FIN, not a RST."""
    try:
        conn.sendall(_PLAIN_ON_TLS)
        conn.shutdown(socket.SHUT_WR)
        drained = 0
        while drained < 65536 and (left := deadline - time.monotonic()) > 0:
            conn.settimeout(left)
            chunk = conn.recv(4096)
            if not chunk:
                break
            drained += len(chunk)
    except OSError:
        pass  # the client went away or took too long: closing is all that is left


def _why(exc: BaseException) -> str:
    """One line for a failed handshake, without the _ssl.c location."""
    if isinstance(exc, TimeoutError):
        return "no complete handshake in time"
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError | ConnectionError):
        return "the client closed the connection mid-handshake"
    reason = getattr(exc, "reason", None)
    if isinstance(exc, ssl.SSLError) and reason:
        return str(reason)
    return str(exc.strerror or exc) if isinstance(exc, OSError) else str(exc)
