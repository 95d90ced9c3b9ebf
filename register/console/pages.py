"""The console's working pages: overview, a kindergarten's day, the табель, flags, a device's log.

Scope is checked on every request (a page outside it answers 404, like one that does not exist); what a
role may change is checked again on every POST (403): a director enters absences and submits, a
district official approves, an auditor clears flags and changes nothing else. Every change is written
to the audit table with who, when and what.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from fastapi.routing import APIRouter
from starlette.concurrency import run_in_threadpool

from register.console import (
    _HEADERS,
    Console,
    _address,
    _console,
    _form,
    _page,
    _refused_csrf,
    _session,
    _this_month,
    _to,
    _user,
    _visitor_lang,
    _who,
    views,
)
from register.console.i18n import words
from register.console.report import report_day, withdraw_day
from register.console.sessions import Session
from register.errors import RegisterError
from register.tabel import approval
from register.tabel.calendar import add_absence, get_settings
from register.tabel.errors import TabelError
from register.users import User, may_see, record, visible_kindergartens

_MONTH = re.compile(r"20\d\d-(0[1-9]|1[0-2])")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
#: The табель downloads: what ``kgate register tabel --format csv|xlsx`` writes.
DOWNLOADS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def attachment(filename: str) -> str:
    """A ``Content-Disposition``: an ASCII-safe ``filename``, and RFC 5987's ``filename*`` if needed.

    Kindergarten ids come from rosters and enrolment tokens and may hold any text (quotes, Cyrillic,
    CR/LF); only ``[A-Za-z0-9._-]`` reaches the plain parameter.
    """
    safe = _UNSAFE.sub("_", filename)
    value = f'attachment; filename="{safe}"'
    if safe != filename:
        value += f"; filename*=UTF-8''{urllib.parse.quote(filename, safe='')}"
    return value


def _not_found(user: User) -> Response:
    return _page("error.html", status=404, lang=user.language, error=words(user.language)["not_found"])


def _forbidden(user: User) -> Response:
    return _page("error.html", status=403, lang=user.language, error=words(user.language)["forbidden"])


def _month(console: Console, month: str | None) -> str | None:
    month = month or _this_month(console)
    return month if _MONTH.fullmatch(month) else None


def _render(template: str, session: Session, user: User, **ctx: Any) -> Response:
    return _page(template, lang=user.language, session=session, who=_who(user), role=user.role, **ctx)


async def _scoped(request: Request, kindergarten: str) -> tuple[Session, User] | Response:
    """The logged-in user if ``kindergarten`` is in scope; else a redirect to login or a 404."""
    found = await _user(request)
    if found is None:
        return _to("/console/login")
    if not await run_in_threadpool(may_see, _console(request).store, found[1], kindergarten):
        return _not_found(found[1])
    return found


async def _scoped_month(
    request: Request, kindergarten: str, month: str | None
) -> tuple[Session, User, str] | Response:
    """:func:`_scoped`, and the month asked for (default: this one) if it is a valid YYYY-MM."""
    found = await _scoped(request, kindergarten)
    if isinstance(found, Response):
        return found
    m = _month(_console(request), month)
    return _not_found(found[1]) if m is None else (*found, m)


def pages_router() -> APIRouter:
    router = APIRouter(prefix="/console", include_in_schema=False)

    @router.get("/overview")
    async def overview(request: Request, page: int = 0, apage: int = 0) -> Response:
        found = await _user(request)
        if found is None:
            return _to("/console/login")
        session, user = found
        console = _console(request)

        def read() -> dict[str, Any]:
            visible = visible_kindergartens(console.store, user)
            return views.overview(
                console.store, visible, page=max(0, page), apage=max(0, apage), now_ms=console.now_ms()
            )

        ctx = await run_in_threadpool(read)
        return _render("overview.html", session, user, title=words(user.language)["overview"], **ctx)

    @router.get("/k/{kindergarten}/day")
    async def day(request: Request, kindergarten: str, date: str | None = None) -> Response:
        found = await _scoped(request, kindergarten)
        if isinstance(found, Response):
            return found
        session, user = found
        console = _console(request)
        try:
            when = (
                dt.date.fromisoformat(date) if date else dt.date.fromisoformat(_this_month(console) + "-01")
            )
        except ValueError:
            return _not_found(user)
        ctx = await run_in_threadpool(views.day, console.store, kindergarten, when)
        return _render(
            "day.html", session, user, title=f"{kindergarten} · {when}", kindergarten=kindergarten, **ctx
        )

    @router.get("/k/{kindergarten}/tabel")
    async def tabel(request: Request, kindergarten: str, month: str | None = None) -> Response:
        found = await _scoped_month(request, kindergarten, month)
        if isinstance(found, Response):
            return found
        session, user, m = found
        console = _console(request)
        t = await run_in_threadpool(console.tabel_cache.get, console.store, kindergarten, m)
        return _render(
            "tabel.html", session, user, title=f"{words(user.language)['tabel']} {kindergarten} {m}",
            kindergarten=kindergarten, month=m, tabel=t,
        )  # fmt: skip

    async def download(request: Request, kindergarten: str, fmt: str, month: str | None) -> Response:
        """The табель file, with exactly the табель page's checks (login, scope, month)."""
        found = await _scoped_month(request, kindergarten, month)
        if isinstance(found, Response):
            return found
        _, user, m = found
        console = _console(request)
        try:
            data, _ = await run_in_threadpool(
                approval.document, console.store, kindergarten, m, fmt, now_ms=console.now_ms()
            )
        except TabelError:  # nothing in the month for a kindergarten in scope: as if there were no page
            return _not_found(user)
        if fmt == "csv":  # who reported is the auditors' to know (views.AUDITORS_ONLY_RULES)
            data = views.mask_csv_for(user.role, data)
        headers = {**_HEADERS, "Content-Disposition": attachment(f"tabel-{kindergarten}-{m}.{fmt}")}
        return Response(data, media_type=DOWNLOADS[fmt], headers=headers)

    @router.get("/k/{kindergarten}/tabel.csv")
    async def tabel_csv(request: Request, kindergarten: str, month: str | None = None) -> Response:
        return await download(request, kindergarten, "csv", month)

    @router.get("/k/{kindergarten}/tabel.xlsx")
    async def tabel_xlsx(request: Request, kindergarten: str, month: str | None = None) -> Response:
        return await download(request, kindergarten, "xlsx", month)

    def action(
        path: str, roles: tuple[str, ...], do: Callable[[Console, User, str, dict[str, str]], str]
    ) -> None:
        """A POST under ``/k/{K}/...``: CSRF, scope, role, then ``do`` (returns the audit detail)."""

        async def handler(request: Request, kindergarten: str) -> Response:
            form = await _form(request)
            found = await _user(request)
            if found is None or not found[0].csrf_ok(form.get("csrf")):
                return _refused_csrf()
            scoped = await _scoped(request, kindergarten)
            if isinstance(scoped, Response):
                return scoped
            session, user = scoped
            if user.role not in roles:
                return _forbidden(user)
            console = _console(request)
            back = form.get("back", "tabel")
            month = form.get("month", "")
            try:
                detail = await run_in_threadpool(do, console, user, kindergarten, form)
            except (RegisterError, TabelError, ValueError) as exc:
                return _render("error.html", session, user, status=400, error=str(exc))
            await run_in_threadpool(
                record, console.store, user.name, path.strip("/"), f"{kindergarten} {detail}",
                now_ms=console.now_ms(), address=_address(request),
            )  # fmt: skip
            target = "flags" if back == "flags" else "tabel"
            return _to(
                f"/console/k/{kindergarten}/{target}?month={month}"
                if _MONTH.fullmatch(month)
                else "/console/"
            )

        router.add_api_route(f"/k/{{kindergarten}}/{path}", handler, methods=["POST"])

    def absence(console: Console, user: User, k: str, form: dict[str, str]) -> str:
        day = dt.date.fromisoformat(form.get("date", ""))
        if approval.frozen(console.store, k, day.strftime("%Y-%m")) is not None:
            raise TabelError(f"{k} {day:%Y-%m} is approved: absences can no longer change it")
        add_absence(
            console.store, k, form.get("child", ""), day, form.get("reason", ""),
            document=form.get("document") or None, by=user.name, now_ms=console.now_ms(),
        )  # fmt: skip
        return f"{form.get('child')} {day} {form.get('reason')}"

    def submit(console: Console, user: User, k: str, form: dict[str, str]) -> str:
        month = form.get("month", "")
        digest = approval.submit(console.store, k, month, by=user.name, now_ms=console.now_ms())
        return f"{month} sha256 {digest}"

    def approve(console: Console, user: User, k: str, form: dict[str, str]) -> str:
        month = form.get("month", "")
        why = form.get("reason", "").strip() or None  # needed with open holding flags or absences
        digest = approval.approve(console.store, k, month, by=user.name, now_ms=console.now_ms(), reason=why)
        return f"{month} sha256 {digest}" + ("" if why is None else f" reason {why!r}")

    def clear(console: Console, user: User, k: str, form: dict[str, str]) -> str:
        flag = form.get("flag", "")
        month = form.get("month", "")
        if flag not in {f["id"] for f in views.flags(console.store, k, month)}:
            raise TabelError(f"no flag {flag!r} in {k} {month}")
        approval.clear_flag(
            console.store, flag, by=user.name, reason=form.get("reason", ""), now_ms=console.now_ms()
        )
        return f"{flag} reason {form.get('reason', '')!r}"

    action("tabel/absence", ("director",), absence)
    action("tabel/submit", ("director",), submit)
    action("tabel/approve", ("district",), approve)
    action("flags/clear", ("auditor",), clear)

    @router.get("/k/{kindergarten}/flags")
    async def flags(request: Request, kindergarten: str, month: str | None = None) -> Response:
        found = await _scoped_month(request, kindergarten, month)
        if isinstance(found, Response):
            return found
        session, user, m = found
        console = _console(request)
        found_flags = await run_in_threadpool(views.flags, console.store, kindergarten, m)
        rows = views.flags_for(user.role, found_flags)
        return _render(
            "flags.html", session, user, title=f"{words(user.language)['flags']} {kindergarten} {m}",
            kindergarten=kindergarten, month=m, flags=rows,
        )  # fmt: skip

    async def _device(request: Request, device_id: int) -> tuple[Session, User, Any] | Response:
        found = await _user(request)
        if found is None:
            return _to("/console/login")
        store = _console(request).store
        dev = await run_in_threadpool(views.device, store, device_id)
        if dev is None or not await run_in_threadpool(may_see, store, found[1], dev.kindergarten):
            return _not_found(found[1])
        return found[0], found[1], dev

    @router.get("/d/{device_id}")
    async def device_log(request: Request, device_id: int, page: int = 0) -> Response:
        found = await _device(request, device_id)
        if isinstance(found, Response):
            return found
        session, user, dev = found
        ctx = await run_in_threadpool(views.device_log, _console(request).store, dev, max(0, page))
        return _render("device.html", session, user, title=dev.origin, device=dev, **ctx)

    @router.get("/d/{device_id}/proof/{index}")
    async def proof(request: Request, device_id: int, index: int) -> Response:
        found = await _device(request, device_id)
        if isinstance(found, Response):
            return found
        data = await run_in_threadpool(views.proof, _console(request).store, found[2], index)
        if data is None:
            return _not_found(found[1])
        headers = {
            **_HEADERS,
            "Content-Disposition": f'attachment; filename="entry-{device_id}-{index}.json"',
        }
        return Response(data, media_type="application/json", headers=headers)

    @router.get("/parent/not-there")
    async def parent_confirm(request: Request, date: str = "") -> Response:
        """Step one of a report: the day, an optional comment, and an explicit confirmation."""
        session = await _session(request)
        if session is None or session.parent_child is None:
            return _to("/console/parent")
        try:
            day = dt.date.fromisoformat(date)
        except ValueError:
            return _page("error.html", status=400, session=session, error=f"not a date: {date[:20]!r}")
        return _page("parent_confirm.html", session=session, lang=_visitor_lang(request), day=day.isoformat())

    async def _parent_form(request: Request) -> tuple[dict[str, str], Session, str, str] | Response:
        """A parent's POST: the form, session, kindergarten and child, once its CSRF token and a parent
        session (a child opened) check."""
        form = await _form(request)
        session = await _session(request)
        if session is None or not session.csrf_ok(form.get("csrf")):
            return _refused_csrf()
        if session.parent_child is None or session.parent_kindergarten is None:
            return _to("/console/parent")
        return form, session, session.parent_kindergarten, session.parent_child

    @router.post("/parent/not-there")
    async def parent_report(request: Request) -> Response:
        found = await _parent_form(request)
        if isinstance(found, Response):
            return found
        form, session, k, child = found
        console = _console(request)
        if form.get("confirm") != "yes":  # one tap is not a report: the confirmation page first
            return _to("/console/parent/not-there?" + urllib.parse.urlencode({"date": form.get("date", "")}))
        try:
            day = dt.date.fromisoformat(form.get("date", ""))
            new = await run_in_threadpool(
                report_day, console.store, k, child, day,
                now_ms=console.now_ms(), comment=form.get("comment"),
            )  # fmt: skip
        except (RegisterError, ValueError) as exc:
            return _page("error.html", status=400, session=session, error=str(exc))
        await run_in_threadpool(
            record, console.store, f"parent:{k}/{child}",
            "parent/not-there", f"{day}: {new} entries newly reported",
            now_ms=console.now_ms(), address=_address(request),
        )  # fmt: skip
        return _to(f"/console/parent/month?month={day:%Y-%m}&reported={day}")

    @router.post("/parent/withdraw")
    async def parent_withdraw(request: Request) -> Response:
        """Withdraw the day's reports made within 24 h: recorded, not deleted; the day no longer held."""
        found = await _parent_form(request)
        if isinstance(found, Response):
            return found
        form, session, k, child = found
        console = _console(request)
        try:
            day = dt.date.fromisoformat(form.get("date", ""))
            zone = (await run_in_threadpool(get_settings, console.store, k)).zone.key
            n = await run_in_threadpool(
                withdraw_day, console.store, k, child, day, zone, now_ms=console.now_ms()
            )
        except (RegisterError, ValueError) as exc:
            return _page("error.html", status=400, session=session, error=str(exc))
        await run_in_threadpool(
            record, console.store, f"parent:{k}/{child}", "parent/withdraw", f"{day}: {n} reports withdrawn",
            now_ms=console.now_ms(), address=_address(request),
        )  # fmt: skip
        return _to(f"/console/parent/month?month={day:%Y-%m}&withdrawn={day}")

    return router
