"""ASGI middleware around the register app: every body bounded, no traceback to a client or the info log.

* Every request body, on every route (device API, enrolment, console forms, the parent report page), is
  read under one deadline and one cap, enforced here by wrapping ``receive``: the whole body must arrive
  within ``body_timeout`` seconds of the request head (408 otherwise) and hold at most ``body_cap(path)``
  bytes (413, refused before a byte is read when ``Content-Length`` already says so). The app sees the
  cut as an exception from ``receive`` (:class:`BodyCut`, an HTTP exception), so nothing after the read
  runs and nothing is written.
* An unexpected exception is logged as one line (the traceback only at debug level) and answered with
  a JSON 500 if no answer was started yet; uvicorn never sees it, so it never logs a traceback either.
* A response sent before the request body was fully received (an early 401, 413, 404 …) carries
  ``Connection: close``, so the server drops the connection instead of draining a body nobody reads.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("kgate.register")

_CLOSE = (b"connection", b"close")


class BodyCut(HTTPException):
    """The body was not received within the deadline (408) or is larger than the route's cap (413)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(status, detail)
        self.code = "timeout" if status == 408 else "too_large"


def _declared(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.strip()
            return int(text) if text.isdigit() and len(text) <= 15 else None
    return None


def _expects_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
    return False


async def _answer(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps({"error": code, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), _CLOSE],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Wraps the app (see the module docstring)."""

    def __init__(
        self, app: ASGIApp, *, body_timeout: float = 10.0, body_cap: Callable[[str], int] = lambda _: 8 << 20
    ) -> None:
        self.app = app
        self.body_timeout = body_timeout
        self.body_cap = body_cap

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.body_cap(str(scope.get("path", "")))
        declared = _declared(scope)
        if declared is not None and declared > cap:
            await _answer(send, 413, "too_large", f"body larger than {cap} bytes")
            return
        state: dict[str, Any] = {"body_done": not _expects_body(scope), "started": False, "got": 0}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout

        async def guarded_receive() -> Message:
            if state["body_done"]:
                return await receive()  # after the body: only http.disconnect, whenever it comes
            if loop.time() >= deadline:
                raise self._late(state["got"])
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise self._late(state["got"]) from None
            if message["type"] == "http.request":
                state["got"] += len(message.get("body", b""))
                if state["got"] > cap:
                    raise BodyCut(413, f"body larger than {cap} bytes")
                if not message.get("more_body", False):
                    state["body_done"] = True
            return message

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
                if not state["body_done"]:
                    message = {**message, "headers": [*message.get("headers", []), _CLOSE]}
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except BodyCut as exc:  # raised where no exception handler turned it into an answer
            if not state["started"]:
                await _answer(send, exc.status_code, exc.code, exc.detail)
        except Exception as exc:  # the last line of defence: one log line, no traceback
            log.error(
                "%s %s -> 500: unexpected %s: %s",
                scope.get("method"),
                scope.get("path"),
                type(exc).__name__,
                str(exc)[:200],
            )
            log.debug("traceback of the 500 above", exc_info=exc)
            if not state["started"]:
                await _answer(send, 500, "internal", "internal error, retry later")

    def _late(self, got: int) -> BodyCut:
        log.info("body cut: not received within %g s (%d bytes arrived)", self.body_timeout, got)
        return BodyCut(408, f"body not received within {self.body_timeout:g} s ({got} bytes arrived)")
