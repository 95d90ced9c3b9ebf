"""ASGI middleware around the register app: no traceback ever reaches a client or the info log.

* An unexpected exception is logged as one line (the traceback only at debug level) and answered with
  a JSON 500 if no answer was started yet; uvicorn never sees it, so it never logs a traceback either.
* A response sent before the request body was fully received (an early 401, 413, 404 …) carries
  ``Connection: close``, so the server drops the connection instead of draining a body nobody reads.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("kgate.register")

_CLOSE = (b"connection", b"close")


def _expects_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
    return False


class Guard:
    """Wraps the app (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = {"body_done": not _expects_body(scope), "started": False}

        async def guarded_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
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
                body = json.dumps({"error": "internal", "detail": "internal error, retry later"}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"application/json"), _CLOSE],
                    }
                )
                await send({"type": "http.response.body", "body": body})
