"""Read-only roster TUF repositories over HTTP: ``GET /v1/rosters/<kindergarten>/metadata|targets/<file>``.

Every request is signed by an enrolled device (RFC 9421, as the other /v1 routes), and a device may read
only its own kindergarten's repository: rosters hold children's names. The metadata's own signatures,
not this transport, are what make a roster trusted (docs/rosters.md). The repository root is
``app.state.rosters_dir`` (set by ``kgate register serve``); without it every roster is 404.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from fastapi.routing import APIRouter
from starlette.concurrency import run_in_threadpool

from register.errors import ApiError, Forbidden
from register.tuf_repo import KINDERGARTEN, TARGET

_METADATA = re.compile(r"(?:[1-9][0-9]{0,9}\.(?:root|snapshot|targets)|timestamp|root)\.json")
_TARGET = re.compile(r"[0-9a-f]{64}\." + re.escape(TARGET))
MAX_FILE = 16 * 1024 * 1024


class NotFound(ApiError):
    """No such roster file (for TUF, the end of the root chain)."""

    status = 404
    code = "not_found"


async def _authenticate(request: Request, kindergarten: str) -> None:
    ctx: Any = request.app.state.ctx
    device, signed = await run_in_threadpool(ctx.authenticate, request)
    ctx.budgets.requests.take(device.keyid)
    ctx.check_body(signed, b"")  # a GET has no body; this also remembers the nonce (no replays)
    if device.kindergarten != kindergarten:
        raise Forbidden(f"device {device.origin!r} belongs to {device.kindergarten!r}, not {kindergarten!r}")


def _serve(request: Request, kindergarten: str, sub: str, name: str, pattern: re.Pattern[str]) -> Response:
    base = getattr(request.app.state, "rosters_dir", None)
    if not KINDERGARTEN.fullmatch(kindergarten) or not pattern.fullmatch(name) or base is None:
        raise NotFound(f"no roster file {kindergarten}/{sub}/{name}")
    path = Path(base) / kindergarten / sub / name
    try:
        data = path.read_bytes() if path.stat().st_size <= MAX_FILE else b""
    except OSError:
        raise NotFound(f"no roster file {kindergarten}/{sub}/{name}") from None
    return Response(data, media_type="application/json", headers={"Cache-Control": "no-store"})


def roster_router() -> APIRouter:
    """The routes; mounted by :func:`register.app.create_app`."""
    router = APIRouter(tags=["rosters"])

    @router.get("/v1/rosters/{kindergarten}/metadata/{name}")
    async def metadata(request: Request, kindergarten: str, name: str) -> Response:
        """A TUF metadata file of ``kindergarten``'s roster repository (signed by the device)."""
        await _authenticate(request, kindergarten)
        return await run_in_threadpool(_serve, request, kindergarten, "metadata", name, _METADATA)

    @router.get("/v1/rosters/{kindergarten}/targets/{name}")
    async def target(request: Request, kindergarten: str, name: str) -> Response:
        """A roster document, by its hash-prefixed name (signed by the device)."""
        await _authenticate(request, kindergarten)
        return await run_in_threadpool(_serve, request, kindergarten, "targets", name, _TARGET)

    return router
