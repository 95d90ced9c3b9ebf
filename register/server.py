"""How ``kgate register serve`` runs the app on uvicorn: connection caps, keep-alive and header deadlines.

uvicorn bounds the number of connections (``limit_concurrency``: beyond it, requests get 503) and the
size of an incomplete request head (h11), but not the time a client may take to send its head. The
protocol class here adds that: a connection that has not sent a complete request head within
``header_timeout`` seconds of connecting (or of its previous answer) is closed. The body deadline is the
app's (:attr:`register.limits.Limits.body_timeout`), since only the app knows who is sending.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("kgate.register")


@dataclass(frozen=True)
class ServeSettings:
    """Connection limits of the HTTP server (see the module docstring)."""

    max_connections: int = 256  # open connections; requests beyond get 503
    header_timeout: float = 10.0  # seconds to send a complete request head
    keep_alive: int = 5  # seconds an idle keep-alive connection stays open
    max_head: int = 16 << 10  # bytes of request line and headers

    def __post_init__(self) -> None:
        if self.max_connections < 1 or self.keep_alive < 1 or self.max_head < 1024:
            raise ValueError("max_connections and keep_alive must be positive, max_head at least 1024")
        if not self.header_timeout > 0:
            raise ValueError("header_timeout must be positive")


class _HeadDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections that do not send a request head in time."""

    header_timeout = 10.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.header_timeout, self._deadline)

    def _deadline(self) -> None:
        self._head_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being served; the app bounds its body
        if not self.transport.is_closing():
            peer = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
            log.info("closing connection from %s: no request head within %g s", peer, self.header_timeout)
            self.transport.close()


def protocol_class(header_timeout: float) -> type[H11Protocol]:
    """An h11 protocol class with the given request-head deadline."""
    return type("HeadDeadlineProtocol", (_HeadDeadlineProtocol,), {"header_timeout": header_timeout})


def default_authorities(host: str, port: int, name: str | None) -> list[str]:
    """What devices may sign as ``@authority``: the listen address, loopback aliases, the register name.

    An agent signs the host[:port] of the URL it was configured with (the scheme's default port
    dropped); behind a proxy or on a public name, pass ``--authority`` instead.
    """
    out: list[str] = []
    hosts = [host] if host not in ("0.0.0.0", "::", "") else []  # noqa: S104 - comparing, not binding
    try:
        if ipaddress.ip_address(host).is_loopback:
            hosts += ["127.0.0.1", "localhost", "[::1]"]
    except ValueError:
        if host == "localhost":
            hosts += ["127.0.0.1", "[::1]"]
    if name:
        hosts.append(name)
    for h in hosts:
        bracketed = f"[{h}]" if ":" in h and not h.startswith("[") else h
        out.append(f"{bracketed}:{port}".lower())
        if name and h == name:
            out.append(h.lower())  # https://NAME: the signer drops the default port
    return list(dict.fromkeys(out))


def config(
    app: Any,
    host: str,
    port: int,
    settings: ServeSettings,
    *,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
) -> uvicorn.Config:
    """The uvicorn configuration of :func:`serve` (tests run the same one in a thread).

    ``proxy_headers=False``: uvicorn would otherwise take ``X-Forwarded-For`` as the client address from
    any peer in ``$FORWARDED_ALLOW_IPS`` (default 127.0.0.1); the console decides that itself, only for
    ``--trusted-proxy`` peers (register/console ``client_address``).
    """
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_class(settings.header_timeout),
        log_config=None,
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
        limit_concurrency=settings.max_connections,
        timeout_keep_alive=settings.keep_alive,
        h11_max_incomplete_event_size=settings.max_head,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
    )


def serve(
    app: Any,
    host: str,
    port: int,
    settings: ServeSettings,
    *,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
) -> None:
    """Run ``app`` on uvicorn until SIGINT/SIGTERM (exit 3, as ``uvicorn.run``, if it could not start)."""
    server = uvicorn.Server(config(app, host, port, settings, tls_cert=tls_cert, tls_key=tls_key))
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(3)


def parse_authority(text: str) -> str:
    """``HOST[:PORT]`` as a signer would normalise it (lower case); ValueError if it is not one."""
    value = text.strip().lower()
    if not value or any(c in value for c in "/?#@ \t") or value.endswith(":"):
        raise ValueError(f"--authority {text!r}: expected HOST[:PORT]")
    return value
