"""Enrolment over HTTP: ``POST /v1/enrol/challenge`` and ``POST /v1/enrol`` (docs/rosters.md).

The device is not enrolled yet, so these routes are authenticated by the one-time token in the
``Authorization: Bearer`` header, checked before the (small, capped) body is read.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import Request
from fastapi.routing import APIRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from register.enrol import Enrolment, token_hash
from register.errors import BadToken, Malformed, RequestTimeout, TooLarge
from register.store.enrolment import get_token
from register.tuf_repo import published_root, repository_id

MAX_BODY = 4096


class ChallengeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vkey: Annotated[str, Field(max_length=400)] | None = None


class ChallengeResponse(BaseModel):
    challenge: str
    origin: str
    register_name: str
    expires_ms: int


class EnrolRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    challenge: Annotated[str, Field(min_length=1, max_length=100)]
    vkey: Annotated[str, Field(min_length=1, max_length=400)]
    signature: Annotated[str, Field(min_length=1, max_length=200)]


class EnrolResponse(BaseModel):
    origin: str
    kindergarten: str
    gate: str
    register_name: str
    cosigner_vkey: str
    replaced: str | None
    #: The id of the kindergarten's roster repository (GET /v1/rosters/<id>/...), None if it cannot name one.
    roster_repository: str | None = None
    #: That repository's newest root.json (the gate's trust anchor for rosters, trusted on first use
    #: through this token-authenticated channel); None until a roster was published (docs/rosters.md).
    roster_root: str | None = None


def _roster_trust(request: Request, kindergarten: str) -> tuple[str | None, str | None]:
    """The roster repository id and its root.json text (None when nothing was published yet)."""
    repo_id = repository_id(kindergarten)
    base = getattr(request.app.state, "rosters_dir", None)
    root = published_root(Path(base), kindergarten) if base is not None and repo_id else None
    return repo_id, root.decode("utf-8") if root else None


def _enrolment(request: Request) -> Enrolment:
    register = request.app.state.ctx.register
    return Enrolment(
        register.store, register.cosigner.name, register.cosigner.vkey, clock=request.app.state.ctx.clock
    )


def _bearer(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or len(token) > 200:
        raise BadToken("enrolment needs Authorization: Bearer <token>")
    return token.strip()


async def _authenticated_body(request: Request, model: type[BaseModel]) -> tuple[str, Any]:
    """The token (known to the register) and the validated body, read only after the token checked out."""
    token = _bearer(request)
    enrolment = _enrolment(request)

    def known() -> bool:
        with enrolment.store._tx(write=False) as sql:
            return get_token(sql, token_hash(token)) is not None

    if not await run_in_threadpool(known):
        raise BadToken("unknown enrolment token (mistyped, or made by another register)")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise TooLarge(f"body larger than {MAX_BODY} bytes")
    raw = b""
    try:
        async with asyncio.timeout(request.app.state.ctx.limits.body_timeout):  # no trickling bodies
            async for chunk in request.stream():
                raw += chunk
                if len(raw) > MAX_BODY:
                    raise TooLarge(f"body larger than {MAX_BODY} bytes")
    except TimeoutError:
        raise RequestTimeout("the enrolment request body did not arrive in time") from None
    try:
        return token, model.model_validate(json.loads(raw or b"{}"))
    except (ValueError, ValidationError) as exc:
        raise Malformed(f"enrolment request: {str(exc).splitlines()[0][:200]}") from None


def enrol_router() -> APIRouter:
    """The enrolment routes; ``create_app`` includes them."""
    router = APIRouter()

    @router.post("/v1/enrol/challenge", response_model=ChallengeResponse)
    async def challenge(request: Request) -> ChallengeResponse:
        """A fresh challenge and the origin the register assigns to the token's gate (or to the known key)."""
        token, body = await _authenticated_body(request, ChallengeRequest)
        answer = await run_in_threadpool(_enrolment(request).challenge, token, body.vkey)
        return ChallengeResponse(**answer)

    @router.post("/v1/enrol", response_model=EnrolResponse)
    async def enrol(request: Request) -> EnrolResponse:
        """Store the device once its signature over the challenge proves possession of its key."""
        token, body = await _authenticated_body(request, EnrolRequest)
        ident = await run_in_threadpool(
            _enrolment(request).enrol, token, body.challenge, body.vkey, body.signature
        )
        repo_id, root = await run_in_threadpool(_roster_trust, request, ident.kindergarten)
        return EnrolResponse(**ident.as_json(), roster_repository=repo_id, roster_root=root)

    return router
