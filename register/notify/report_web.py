"""The report page behind each message's link: ``GET/POST /console/parent/report`` (served with --console).

One step for the parent: the page names the event (child, in/out, local time) and asks for the child's
access code; submitting it records the report (register/notify/report.py). No cookie or CSRF token is
needed: the code itself is the credential, so a forged cross-site form cannot report without it.
"""

from __future__ import annotations

import html
import urllib.parse
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from register.console import client_address
from register.errors import BadCredentials, LockedOut
from register.notify.errors import TooManyReports
from register.notify.messages import local_time
from register.notify.report import find_event, report_not_there
from register.notify.unsubscribe import unsubscribe

MAX_FORM: Final = 4096
_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_KIND: Final = {"in": "приход / келді / arrived", "out": "уход / кетті / left"}


def _page(body: str, status: int = 200) -> HTMLResponse:
    doc = (
        '<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" '
        'content="width=device-width"><title>kgate</title></head><body>' + body + "</body></html>"
    )
    return HTMLResponse(doc, status_code=status, headers=_HEADERS)


def _form(key: str, what: str, error: str = "") -> str:
    e = html.escape
    return (
        f"<h1>Ребёнка не было? · Бала болмады ма? · Not there?</h1><p>{e(what)}</p>"
        + (f'<p role="alert">{e(error)}</p>' if error else "")
        + '<form method="post" action="/console/parent/report">'
        f'<input type="hidden" name="e" value="{e(key)}">'
        "<p><label>Код доступа · Қол жеткізу коды · Access code<br>"
        '<input name="code" autocomplete="off" required></label></p>'
        "<p><button>Сообщить · Хабарлау · Report</button></p></form>"
    )


def report_router() -> APIRouter:
    """The routes; they use the console's store, clock and login policy (``app.state.console``)."""
    router = APIRouter(prefix="/console", include_in_schema=False)

    @router.get("/parent/report")
    async def report_form(request: Request, e: str = "") -> HTMLResponse:
        console = request.app.state.console
        event = await run_in_threadpool(find_event, console.store, e[:64])
        if event is None:
            return _page("<p>Unknown link.</p>", status=404)
        when = local_time(event.time_ms, event.zone).strftime("%H:%M %d.%m.%Y")
        return _page(_form(e, f"{_KIND.get(event.kind, event.kind)}: {when}"))

    @router.post("/parent/report")
    async def report_post(request: Request) -> HTMLResponse:
        console = request.app.state.console
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM:
                return _page("<p>Too large.</p>", status=413)
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()}
        key, code = form.get("e", "")[:64], form.get("code", "")
        try:
            _event, new = await run_in_threadpool(
                report_not_there,
                console.store,
                key,
                code,
                address=client_address(request),
                now_ms=console.now_ms(),
                policy=console.policy,
            )
        except LockedOut as exc:
            page = _page("<p>Too many attempts; try later.</p>", status=429)
            page.headers["Retry-After"] = str(exc.retry_after)
            return page
        except TooManyReports as exc:
            page = _page(
                "<p>Слишком много сообщений за месяц; проверяющие уведомлены · Бір айға тым көп хабарлама; "
                "тексерушілерге хабарланды · Too many reports this month; the auditors are told</p>",
                status=429,
            )
            page.headers["Retry-After"] = str(exc.retry_after)
            return page
        except BadCredentials:
            return _page(_form(key, "", "Неверный код · Код қате · Wrong code"), status=401)
        done = (
            "Спасибо, сообщение передано проверяющим · Рақмет, тексерушілерге жіберілді · "
            "Thank you, auditors are told"
        )
        return _page(f"<p>{html.escape(done)}</p>" + ("" if new else "<p>(already reported)</p>"))

    @router.get("/parent/unsubscribe")
    async def unsubscribe_form(t: str = "") -> HTMLResponse:
        # a GET never unsubscribes (mail scanners open links): one button POSTs the RFC 8058 body
        return _page(
            "<h1>Отписаться · Жазылымнан бас тарту · Unsubscribe</h1>"
            '<form method="post" action="/console/parent/unsubscribe?t='
            + html.escape(urllib.parse.quote(t[:128], safe=""))
            + '"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
            "<p><button>Больше не присылать письма · Хаттарды жібермеу · Stop these emails</button></p>"
            "</form>"
        )

    @router.post("/parent/unsubscribe")
    async def unsubscribe_post(request: Request, t: str = "") -> HTMLResponse:
        """RFC 8058: the token is in the URL, the body is ``List-Unsubscribe=One-Click``; no login."""
        console = request.app.state.console
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM:
                return _page("<p>Too large.</p>", status=413)
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        if form.get("List-Unsubscribe") != ["One-Click"]:
            return _page("<p>Expected List-Unsubscribe=One-Click.</p>", status=400)
        done = await run_in_threadpool(unsubscribe, console.store, t[:128], now_ms=console.now_ms())
        if done is None:
            return _page("<p>Unknown link.</p>", status=404)
        return _page(
            "<p>Вы отписаны · Жазылымнан шықтыңыз · You are unsubscribed: " + html.escape(done[1]) + "</p>"
        )

    return router
