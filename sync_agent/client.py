"""The register's HTTP API as the agent sees it (docs/protocol.md), over ``requests``.

Every call has a (connect, read) timeout, TLS is verified against the configured CA bundle (or the
system store; never disabled), plain HTTP is allowed only to loopback, request bodies are gzipped, and
every request is signed with the device key (RFC 9421, :mod:`ledger.httpsig`). Answers are mapped onto
the exception tree in :mod:`sync_agent.errors`: retry later vs. stop is decided here, once.
"""

from __future__ import annotations

import email.utils
import gzip
import json
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import requests

from kgate.errors import UsageError
from kgate.urls import check_url
from ledger.httpsig import sign_request
from ledger.note import Ed25519Signer
from sync_agent.errors import (
    BadResponseError,
    EquivocationError,
    GapError,
    RateLimited,
    RejectedError,
    ServerError,
    TransportError,
)

log = logging.getLogger(__name__)

MAX_RESPONSE: Final = 1 << 20  # bytes; the register's answers are a checkpoint note and a few numbers
GZIP_MIN: Final = 512  # bytes; smaller bodies are sent as they are
USER_AGENT: Final = "kgate-sync"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class RegisterClient:
    """Signed JSON calls to one register: :meth:`push`, :meth:`state`, :meth:`heartbeat`."""

    def __init__(
        self,
        base_url: str,
        signer: Ed25519Signer,
        *,
        ca: Path | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = check_url(base_url, "register URL")
        self._signer = signer
        if ca is not None and not Path(ca).is_file():
            raise UsageError(f"CA bundle {ca} does not exist")
        self._verify: bool | str = str(ca) if ca is not None else True
        self._timeout = timeout
        self._session = session or requests.Session()
        self._clock = clock

    def close(self) -> None:
        self._session.close()

    def push(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST /v1/push; the 200 answer ``{"size", "cosigned"}`` (not yet verified: the agent does)."""
        return self._call("POST", "/v1/push", body)

    def state(self) -> dict[str, Any]:
        """GET /v1/state: ``{"size", "cosigned"}``, what the register holds for this device."""
        return self._call("GET", "/v1/state", None)

    def heartbeat(self, origin: str, heartbeat: Mapping[str, Any]) -> None:
        """POST /v1/heartbeat (when nothing is pending, so no push carries it)."""
        self._call("POST", "/v1/heartbeat", {"origin": origin, "heartbeat": dict(heartbeat)})

    def _call(self, method: str, path: str, payload: Mapping[str, Any] | None) -> dict[str, Any]:
        url = self.base_url + path
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        body = b""
        if payload is not None:
            body = json.dumps(payload, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
            if len(body) >= GZIP_MIN:
                body = gzip.compress(body, compresslevel=5, mtime=0)
                headers["Content-Encoding"] = "gzip"
        headers.update(sign_request(method, url, headers, body, self._signer, now=int(self._clock())))
        try:
            resp = self._session.request(
                method,
                url,
                data=body or None,
                headers=headers,
                timeout=self._timeout,
                verify=self._verify,
                allow_redirects=False,
                stream=True,
            )
            try:
                raw = _read_capped(resp)
            finally:
                resp.close()
        except requests.exceptions.SSLError as exc:
            raise TransportError(f"TLS to {self.base_url} failed: {_short(exc)}") from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise TransportError(f"{method} {path}: {_short(exc)}") from None
        except requests.exceptions.RequestException as exc:
            raise TransportError(f"{method} {path}: {_short(exc)}") from None
        return self._answer(method, path, resp, raw)

    def _answer(self, method: str, path: str, resp: requests.Response, raw: bytes) -> dict[str, Any]:
        status = resp.status_code
        what = f"{method} {path}: HTTP {status}"
        data = _json_object(raw)
        detail = str(data.get("detail") or data.get("error") or raw[:200].decode("utf-8", "replace"))
        if status == 200:
            if not data:
                # A mangled 200 (proxy, truncation) is not an answer; the request is idempotent.
                raise ServerError(f"{what} with a body that is not a JSON object")
            return data
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        if status >= 500:
            raise ServerError(f"{what}: {detail}", retry_after)
        if status == 429:
            raise RateLimited(f"{what}: rate limited", retry_after)
        if status == 409 and data.get("error") == "gap":
            size = data.get("size")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise BadResponseError(f"{what}: gap answer without a valid size")
            raise GapError(f"{what}: register holds {size} entries", size)
        if status == 409 and data.get("error") == "equivocation":
            raise EquivocationError(f"{what}: EQUIVOCATION reported by the register: {detail}")
        if 300 <= status < 400:
            raise RejectedError(f"{what}: unexpected redirect (redirects are not followed)", status)
        raise RejectedError(f"{what}: {detail}", status)


def _read_capped(resp: requests.Response) -> bytes:
    out = bytearray()
    for chunk in resp.iter_content(65536):
        out += chunk
        if len(out) > MAX_RESPONSE:
            raise requests.exceptions.ContentDecodingError(f"answer larger than {MAX_RESPONSE} bytes")
    return bytes(out)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _short(exc: Exception) -> str:
    """A one-line reason without urllib3's nested reprs."""
    text = str(exc)
    for marker in ("Caused by ", "Failed to establish a new connection: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text.strip("()'\" ")[:200] or type(exc).__name__
