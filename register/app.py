"""The register's HTTP API (FastAPI): POST /v1/push, GET /v1/state, POST /v1/heartbeat — docs/protocol.md.

Every /v1 route goes through :class:`SignedRoute`: the RFC 9421 signature over the headers (which
carry the Content-Digest) is checked against the enrolled device keys and the register's own authority
BEFORE any of the body is read; the device's request and byte budgets are charged; then the body is read
with a size cap (under the deadline every body has, guard.py), checked against the signed digest,
decompressed (with a cap) and handed to FastAPI's strict JSON validation. Errors are JSON
``{"error": code, "detail": text}``; hostile input gets 4xx, never a 5xx, and an answer sent before the
body was read closes the connection (guard.py).
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
import zlib
from collections.abc import Callable, Collection, Coroutine
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute, APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from ledger.httpsig import (
    NonceBudgetExceeded,
    ReplayCache,
    SignatureRejected,
    SignedHeaders,
    UnknownKeyId,
    check_body,
    verify_headers,
)
from ledger.note import Ed25519Verifier
from register.enrol_api import enrol_router
from register.errors import (
    ApiError,
    ClientGone,
    Forbidden,
    Malformed,
    RateLimited,
    StoreError,
    StoreUnavailable,
    TooLarge,
    Unauthenticated,
)
from register.guard import Guard
from register.ingest import Batch
from register.limits import DeviceBudgets, Limits
from register.roster_api import roster_router
from register.service import Register
from register.store import Device

log = logging.getLogger("kgate.register")

U63 = Annotated[int, Field(ge=0, le=(1 << 63) - 1)]
_B64_ENTRY = Annotated[str, Field(max_length=8192)]
_B64_HASH = Annotated[str, Field(max_length=64)]


class Heartbeat(BaseModel):
    """A device's health report; unknown fields are ignored, all fields optional."""

    model_config = ConfigDict(extra="ignore", strict=True)

    time_ms: U63 | None = None
    free_disk_bytes: U63 | None = None
    clock_synced: bool | None = None
    roster_version: U63 | None = None
    camera_ok: bool | None = None
    uptime_s: Annotated[float, Field(ge=0, le=1e12)] | None = None
    software_version: Annotated[str, Field(max_length=100)] | None = None
    pending: U63 | None = None


class PushRequest(BaseModel):
    """A batch of entries ``start .. start+len(entries)-1`` with the device-signed checkpoint of its end."""

    model_config = ConfigDict(strict=True)  # "5" or true for a number is a 400, not converted

    origin: Annotated[str, Field(min_length=1, max_length=300)]
    start: U63
    entries: Annotated[list[_B64_ENTRY], Field(max_length=1 << 20)]
    checkpoint: Annotated[str, Field(min_length=1, max_length=1 << 16)]
    old_size: U63
    proof: Annotated[list[_B64_HASH], Field(max_length=130)] = []
    heartbeat: Heartbeat | None = None


class PushResponse(BaseModel):
    """The acknowledgement: the stored size and the checkpoint with the register's cosignature appended."""

    size: int
    cosigned: str


class StateResponse(BaseModel):
    """What the register holds of the calling device's log."""

    size: int
    cosigned: str | None


class HeartbeatRequest(BaseModel):
    model_config = ConfigDict(strict=True)

    origin: Annotated[str, Field(min_length=1, max_length=300)]
    heartbeat: Heartbeat


class HeartbeatResponse(BaseModel):
    ok: bool
    time_ms: int


class ErrorBody(BaseModel):
    """Every error: a code and a human ``detail``; gap adds ``size``, equivocation ``index``."""

    error: str
    detail: str
    size: int | None = None
    index: int | None = None


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (400, "malformed request"),
        (401, "missing, bad, expired or replayed signature, or signed for another authority"),
        (403, "unknown or disabled device, or another device's log"),
        (409, "equivocation or gap"),
        (408, "body not received in time"),
        (413, "body or batch too large"),
        (422, "batch does not verify"),
        (429, "rate limited; see Retry-After"),
        (503, "retry later"),
    )
}
_SIGNED: dict[str, Any] = {"security": [{"httpsig": []}]}


def _error(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status, headers=headers)


class _DecodedRequest(Request):
    """A request whose body was already read, checked and decompressed."""

    def __init__(self, request: Request, body: bytes) -> None:
        super().__init__(request.scope, request.receive)
        self._decoded = body

    async def body(self) -> bytes:
        return self._decoded


def _declared_length(request: Request, limit: int) -> int | None:
    """The Content-Length, refused when over ``limit`` before a byte of the body is read."""
    length = request.headers.get("content-length")
    if length is None:
        return None
    if not length.isdigit() or len(length) > 15:
        raise Malformed("Content-Length is not a number")
    if int(length) > limit:
        raise TooLarge(f"body larger than {limit} bytes")
    return int(length)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, at most ``limit`` bytes; its deadline is the one :class:`register.guard.Guard` puts on
    every request's body (408 once it passes)."""
    chunks: list[bytes] = []
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise TooLarge(f"body larger than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientGone(f"client disconnected after {total} bytes of the body") from None
    return b"".join(chunks)


def _decode(body: bytes, encoding: str | None, limit: int) -> bytes:
    if encoding is None or encoding.strip().lower() in ("", "identity"):
        if len(body) > limit:
            raise TooLarge(f"body larger than {limit} bytes")
        return body
    if encoding.strip().lower() != "gzip":
        raise Malformed(f"unsupported Content-Encoding {encoding[:40]!r} (use gzip)")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            raise TooLarge(f"body decompresses to more than {limit} bytes")
        out += inflater.flush()
    except zlib.error as exc:
        raise Malformed(f"body is not valid gzip: {exc}") from None
    if not inflater.eof or inflater.unused_data:
        raise Malformed("body is not exactly one complete gzip stream")
    if len(out) > limit:
        raise TooLarge(f"body decompresses to more than {limit} bytes")
    return out


class SignedRoute(APIRoute):
    """A route that admits only requests signed by an enrolled device (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            ctx: Context = request.app.state.ctx
            length = _declared_length(request, ctx.limits.max_body)
            device, signed = await run_in_threadpool(ctx.authenticate, request)
            ctx.budgets.requests.take(device.keyid)
            if length:
                ctx.budgets.bytes.take(device.keyid, length)
            raw = await _read_body(request, ctx.limits.max_body)
            ctx.check_body(signed, raw)
            if length is None and raw:
                ctx.budgets.bytes.take(device.keyid, len(raw))
            body = _decode(raw, request.headers.get("content-encoding"), ctx.limits.max_decoded)
            decoded = _DecodedRequest(request, body)
            decoded.scope["kgate.device"] = device
            decoded.scope["kgate.raw"] = body
            return await inner(decoded)

        return handler


class Context:
    """What request handlers share: the register, limits, replay cache, device budgets, clock.

    ``authorities`` are the host[:port] values a request may be signed for (None: not checked, for
    embedding in tests; ``kgate register serve`` always sets them).
    """

    def __init__(
        self,
        register: Register,
        limits: Limits,
        clock: Callable[[], float],
        authorities: Collection[str] | None = None,
    ) -> None:
        self.register = register
        self.limits = limits
        self.clock = clock
        self.authorities = None if authorities is None else frozenset(a.lower() for a in authorities)
        self.replay = ReplayCache(per_key=limits.nonces)
        self.budgets = DeviceBudgets(limits, clock)

    def check_body(self, signed: SignedHeaders, body: bytes) -> None:
        """The body matches the signed Content-Digest; the nonce is remembered (401/429 otherwise)."""
        try:
            check_body(signed, body, now=int(self.clock()), replay=self.replay)
        except NonceBudgetExceeded as exc:
            raise RateLimited(exc.reason, retry_after=60) from None
        except SignatureRejected as exc:
            raise Unauthenticated(exc.reason) from None

    def authenticate(self, request: Request) -> tuple[Device, SignedHeaders]:
        """The enrolled device that signed ``request``'s headers; Unauthenticated (401) or Forbidden (403)."""
        found: list[Device] = []

        def lookup(keyid: str) -> Ed25519Verifier | None:
            device = self.register.store.device_by_keyid(keyid)
            if device is None or device.disabled:
                return None
            found.append(device)
            return device.verifier()

        raw_path = request.scope.get("raw_path")
        path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else request.url.path
        try:
            signed = verify_headers(
                request.method,
                path,
                request.headers,
                lookup,
                now=int(self.clock()),
                replay=self.replay,
                authorities=self.authorities,
            )
        except UnknownKeyId as exc:
            raise Forbidden(f"unknown or disabled device: {exc.reason}") from None
        except SignatureRejected as exc:
            raise Unauthenticated(exc.reason) from None
        return found[-1], signed


def _device(request: Request, origin: str) -> Device:
    device: Device = request.scope["kgate.device"]
    if origin != device.origin:
        raise Forbidden(f"request signed by {device.origin!r} is about the log {origin!r}")
    return device


def _b64(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Malformed(f"{what} is not valid base64") from None
    return raw


def _batch(body: PushRequest, max_batch: int) -> Batch:
    if len(body.entries) > max_batch:
        raise TooLarge(f"batch has {len(body.entries)} entries, at most {max_batch} allowed")
    return Batch(
        origin=body.origin,
        start=body.start,
        entries=tuple(_b64(e, f"entries[{i}]") for i, e in enumerate(body.entries)),
        checkpoint=body.checkpoint,
        old_size=body.old_size,
        proof=tuple(_b64(p, f"proof[{i}]") for i, p in enumerate(body.proof)),
    )


def _hb(heartbeat: Heartbeat | None) -> dict[str, Any] | None:
    return None if heartbeat is None else heartbeat.model_dump(exclude_none=True)


def _router() -> APIRouter:
    router = APIRouter(route_class=SignedRoute, responses=_ERRORS)

    @router.post("/v1/push", response_model=PushResponse, openapi_extra=_SIGNED)
    def push(body: PushRequest, request: Request) -> PushResponse:
        """Deliver entries with the device-signed checkpoint; answers with the register's cosignature."""
        ctx: Context = request.app.state.ctx
        device = _device(request, body.origin)
        batch = _batch(body, ctx.limits.max_batch)
        ctx.budgets.entries.take(device.keyid, len(batch.entries))
        receipt = ctx.register.ingest(device, batch, evidence=request.scope["kgate.raw"])
        ctx.register.heard_from(device, _hb(body.heartbeat))
        return PushResponse(size=receipt.size, cosigned=receipt.cosigned)

    @router.get("/v1/state", response_model=StateResponse, openapi_extra=_SIGNED)
    def state(request: Request) -> StateResponse:
        """The calling device's stored size and newest cosigned checkpoint (to resume after lost state)."""
        ctx: Context = request.app.state.ctx
        device: Device = request.scope["kgate.device"]
        size, cosigned = ctx.register.state(device)
        ctx.register.heard_from(device, None)
        return StateResponse(size=size, cosigned=cosigned)

    @router.post("/v1/heartbeat", response_model=HeartbeatResponse, openapi_extra=_SIGNED)
    def heartbeat(body: HeartbeatRequest, request: Request) -> HeartbeatResponse:
        """Record the device's health report (heartbeats also ride on pushes)."""
        ctx: Context = request.app.state.ctx
        device = _device(request, body.origin)
        ctx.register.heard_from(device, _hb(body.heartbeat))
        return HeartbeatResponse(ok=True, time_ms=ctx.register.now_ms())

    return router


_STATUS_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    400: "malformed",
    408: "timeout",
    413: "too_large",
}


def create_app(
    register: Register,
    *,
    limits: Limits | None = None,
    clock: Callable[[], float] = time.time,
    authorities: Collection[str] | None = None,
) -> FastAPI:
    """The ASGI app serving ``register``; ``clock`` (POSIX seconds) is injectable for tests.

    ``authorities``: the host[:port] values requests must be signed for (see :class:`Context`).
    """
    limits = limits or Limits()
    app = FastAPI(
        title="kgate register",
        version="1",
        description="Receives, verifies, stores and cosigns kindergarten gate logs. See docs/protocol.md.",
    )
    app.state.ctx = Context(register, limits, clock, authorities)
    app.include_router(_router())
    app.add_middleware(Guard, body_timeout=limits.body_timeout, body_cap=limits.body_cap)
    app.include_router(enrol_router())
    app.include_router(roster_router())  # GET /v1/rosters/...: register/roster_api.py

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        if isinstance(exc, ClientGone):
            log.info("%s %s: %s", request.method, request.url.path, exc.detail)
        elif exc.status >= 408 or exc.status == 401:
            log.info("%s %s -> %d %s: %s", request.method, request.url.path, exc.status, exc.code, exc.detail)
        return _error(exc.status, exc.code, exc.detail, headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(400, "malformed", f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        return _error(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(StoreUnavailable)
    async def busy(request: Request, exc: StoreUnavailable) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return _error(503, "unavailable", "database unavailable, retry later", {"Retry-After": "5"})

    @app.exception_handler(StoreError)
    async def store_error(request: Request, exc: StoreError) -> JSONResponse:
        log.error("database error: %s", exc)
        return _error(500, "internal", "database error, retry later")

    original_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original_openapi()
            schema.setdefault("components", {})["securitySchemes"] = {
                "httpsig": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Signature",
                    "description": "RFC 9421 HTTP Message Signature by the device key (docs/protocol.md); "
                    "with Signature-Input and, for bodies, Content-Digest.",
                }
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
