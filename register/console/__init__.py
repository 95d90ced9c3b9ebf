"""The register's web console (docs/console.md): server-rendered pages under ``/console``, no JavaScript.

Mounted only by ``kgate register serve --console``. Sessions are server-side (:mod:`.sessions`), written
only at a successful login or parent code; the cookies are ``HttpOnly``, ``SameSite=Strict``,
``Path=/console`` and ``Secure`` when served over TLS; every form carries a CSRF token (its session's,
or a signed stateless one for visitors without a session, :mod:`.csrf`) and a POST without the right one
is refused (403) before anything else happens. Pages a role may not see answer 404, the same as pages
that do not exist.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import time
import urllib.parse
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRouter
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from ledger.note import CosignatureSigner
from register.console import csrf as anon_csrf
from register.console.i18n import LANGUAGES, words
from register.console.sessions import Session, create_session, end_session, get_session
from register.console.views import TabelCache
from register.errors import BadCredentials, LockedOut, RegisterError
from register.parent_codes import verify_parent_code
from register.statement import build_statement, child_home
from register.store.base import Store
from register.users import DEFAULT_POLICY, LoginPolicy, User, login, user_by_id, visible_kindergartens

COOKIE = "kgate_session"
_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True),
)
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass
class Console:
    """What the routes need: the store, whether cookies are Secure, the clock, the login policy, a key."""

    store: Store
    secure: bool
    clock: Callable[[], float]
    policy: LoginPolicy
    csrf_key: bytes = field(repr=False)
    tabel_cache: TabelCache = field(default_factory=TabelCache)
    signer: CosignatureSigner | None = field(
        default=None, repr=False
    )  # signs statements (docs/statements.md)
    trusted_proxies: frozenset[str] = frozenset()

    def now_ms(self) -> int:
        return int(self.clock() * 1000)


LANG_COOKIE = "kgate_lang"


def _visitor_lang(request: Request) -> str:
    """A parent's language (parents are not users): ``?lang=`` if given, else their cookie, else Russian."""
    for chosen in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if chosen in LANGUAGES:
            return str(chosen)
    return "ru"


def _remember_lang(request: Request, response: Response) -> Response:
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(
            LANG_COOKIE, _visitor_lang(request), path="/console", httponly=True, samesite="strict",
            secure=_console(request).secure, max_age=365 * 86400,
        )  # fmt: skip
    return response


def _console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def _page(
    template: str,
    *,
    status: int = 200,
    lang: str = "ru",
    session: Session | None = None,
    token: str = "",
    **ctx: Any,
) -> HTMLResponse:
    """A page; its forms carry ``session``'s CSRF token, else ``token`` (an anonymous visitor's)."""
    t = words(lang)
    html = _TEMPLATES.get_template(template).render(
        t=t, lang=lang, csrf=session.csrf if session else token, title=ctx.pop("title", t["console"]), **ctx
    )
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def _set_cookie(response: Response, console: Console, session: Session) -> None:
    response.set_cookie(
        COOKIE,
        session.id,
        max_age=(session.expires_ms - console.now_ms()) // 1000,
        path="/console",
        secure=console.secure,
        httponly=True,
        samesite="strict",
    )


async def _form(request: Request) -> dict[str, str]:
    """The url-encoded form body (one value per name, at most 10 fields).

    Its size (``Limits.max_form``) and deadline (``Limits.body_timeout``) are the ones every request body
    has (register/guard.py): a body cut there raises out of here, before anything is checked or written.
    """
    body = await request.body()
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), max_num_fields=10)
    except ValueError:  # more than 10 fields: no form of ours, refused like a missing CSRF token
        return {}
    return dict(pairs)


def client_address(request: Request) -> str:
    """The client's address: the socket's peer, unless that peer is a ``--trusted-proxy``.

    From a trusted proxy (and only from it) the last ``X-Forwarded-For`` hop is taken: the address the
    proxy itself appended (nginx ``$proxy_add_x_forwarded_for``); anything a client wrote before it is
    ignored, and a last hop that is no IP address leaves the proxy's own address.
    """
    peer = request.client.host if request.client else "unknown"
    try:
        trusted = str(ipaddress.ip_address(peer)) in _console(request).trusted_proxies
    except ValueError:
        trusted = False
    if not trusted:
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",")]
    try:
        return str(ipaddress.ip_address(hops[-1]))
    except ValueError:
        return peer


_address = client_address


async def _session(request: Request) -> Session | None:
    console = _console(request)
    return await run_in_threadpool(
        get_session, console.store, request.cookies.get(COOKIE), now_ms=console.now_ms()
    )


@dataclass(frozen=True)
class Visitor:
    """Who fills in the login or parent-code form: their session if they have one, else a signed token.

    ``nonce`` is set when the visitor's ``kgate_anon`` cookie must be (re)set; nothing is stored.
    """

    session: Session | None
    token: str
    nonce: str | None

    def page(self, template: str, **kw: Any) -> HTMLResponse:
        return _page(template, session=self.session, token=self.token, **kw)


async def _anonymous(request: Request) -> Visitor:
    """The request's session, or a stateless CSRF token bound to the visitor's ``kgate_anon`` cookie."""
    found = await _session(request)
    if found is not None:
        return Visitor(found, found.csrf, None)
    console = _console(request)
    nonce = request.cookies.get(anon_csrf.ANON_COOKIE)
    fresh = None if anon_csrf.valid_nonce(nonce) else anon_csrf.new_nonce()
    token = anon_csrf.make_token(console.csrf_key, fresh or str(nonce), now_s=console.now_ms() // 1000)
    return Visitor(None, token, fresh)


def _set_anon_cookie(response: Response, console: Console, nonce: str | None) -> Response:
    if nonce is not None:
        response.set_cookie(
            anon_csrf.ANON_COOKIE, nonce, path="/console", secure=console.secure, httponly=True,
            samesite="strict",
        )  # fmt: skip
    return response


async def _form_visitor(request: Request, form: dict[str, str]) -> Visitor | None:
    """The visitor posting an anonymous form if its CSRF token is right (theirs, unexpired), else None."""
    console = _console(request)
    session = await _session(request)
    token = form.get("csrf")
    if session is not None and session.csrf_ok(token):
        return Visitor(session, session.csrf, None)
    nonce = request.cookies.get(anon_csrf.ANON_COOKIE)
    now_s = console.now_ms() // 1000
    if anon_csrf.token_ok(console.csrf_key, nonce, token, now_s=now_s):
        return Visitor(None, anon_csrf.make_token(console.csrf_key, str(nonce), now_s=now_s), None)
    return None


def _signed_in(response: Response, console: Console, fresh: Session) -> Response:
    """The new session's cookie, and the anonymous cookie gone (it is of no more use)."""
    _set_cookie(response, console, fresh)
    response.delete_cookie(
        anon_csrf.ANON_COOKIE, path="/console", secure=console.secure, httponly=True, samesite="strict"
    )
    return response


async def _user(request: Request) -> tuple[Session, User] | None:
    session = await _session(request)
    if session is None or session.user_id is None:
        return None
    user = await run_in_threadpool(user_by_id, _console(request).store, session.user_id)
    return None if user is None or user.disabled else (session, user)


def _to(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303, headers=_HEADERS)


def _refused_csrf() -> HTMLResponse:
    return _page("error.html", status=403, error="CSRF token missing or wrong: reload the form")


def console_router() -> APIRouter:
    router = APIRouter(prefix="/console", include_in_schema=False)

    @router.get("/login")
    async def login_form(request: Request) -> Response:
        visitor = await _anonymous(request)
        return _set_anon_cookie(visitor.page("login.html"), _console(request), visitor.nonce)

    @router.post("/login")
    async def login_post(request: Request) -> Response:
        console = _console(request)
        form = await _form(request)
        visitor = await _form_visitor(request, form)
        if visitor is None:
            return _refused_csrf()
        try:
            user = await run_in_threadpool(
                login,
                console.store,
                form.get("name", ""),
                form.get("password", ""),
                address=_address(request),
                now_ms=console.now_ms(),
                policy=console.policy,
            )
        except LockedOut as exc:
            page = visitor.page("login.html", status=429, error=words("ru")["locked"])
            page.headers["Retry-After"] = str(exc.retry_after)
            return page
        except BadCredentials:
            return visitor.page("login.html", status=401, error=words("ru")["wrong"])
        old = visitor.session.id if visitor.session else None
        fresh = await run_in_threadpool(
            create_session, console.store, now_ms=console.now_ms(), user_id=user.id, replaces=old
        )
        return _signed_in(_to("/console/"), console, fresh)

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        form = await _form(request)
        session = await _session(request)
        if session is None or not session.csrf_ok(form.get("csrf")):
            return _refused_csrf()
        await run_in_threadpool(end_session, _console(request).store, session.id)
        response = _to("/console/login")
        response.delete_cookie(
            COOKIE, path="/console", secure=_console(request).secure, httponly=True, samesite="strict"
        )
        return response

    @router.get("/")
    async def home(request: Request) -> Response:
        found = await _user(request)
        if found is None:
            return _to("/console/login")
        session, user = found
        rows = await run_in_threadpool(_overview, _console(request).store, user)
        return _page("home.html", lang=user.language, session=session, who=_who(user), kindergartens=rows)

    @router.get("/k/{kindergarten}")
    async def kindergarten_page(request: Request, kindergarten: str) -> Response:
        found = await _user(request)
        if found is None:
            return _to("/console/login")
        session, user = found
        ctx = await run_in_threadpool(_kindergarten, _console(request).store, user, kindergarten)
        if ctx is None:  # not in the user's scope, or no such kindergarten: the same answer
            return _page(
                "error.html", status=404, lang=user.language, error=words(user.language)["not_found"]
            )
        return _page(
            "kindergarten.html",
            lang=user.language,
            session=session,
            who=_who(user),
            title=kindergarten,
            **ctx,
        )

    @router.get("/parent")
    async def parent_form(request: Request) -> Response:
        visitor = await _anonymous(request)
        response = visitor.page("parent_code.html", lang=_visitor_lang(request))
        _set_anon_cookie(response, _console(request), visitor.nonce)
        return _remember_lang(request, response)

    @router.post("/parent")
    async def parent_post(request: Request) -> Response:
        console = _console(request)
        form = await _form(request)
        visitor = await _form_visitor(request, form)
        if visitor is None:
            return _refused_csrf()
        now_s = console.now_ms() // 1000
        known = anon_csrf.parent_device_ok(
            console.csrf_key, request.cookies.get(anon_csrf.PARENT_COOKIE), now_s=now_s
        )
        try:
            access = await run_in_threadpool(
                verify_parent_code,
                console.store,
                form.get("code", ""),
                address=_address(request),
                now_ms=console.now_ms(),
                policy=console.policy,
                known=known,
            )
        except LockedOut as exc:
            lang = _visitor_lang(request)
            error = words(lang)["locked"]
            page = visitor.page("parent_code.html", status=429, lang=lang, error=error)
            page.headers["Retry-After"] = str(exc.retry_after)
            return page
        except BadCredentials:
            lang = _visitor_lang(request)
            error = words(lang)["wrong"]
            return visitor.page("parent_code.html", status=401, lang=lang, error=error)
        fresh = await run_in_threadpool(
            create_session,
            console.store,
            now_ms=console.now_ms(),
            parent=(access.kindergarten, access.child),
            replaces=visitor.session.id if visitor.session else None,
        )
        response = _signed_in(_to("/console/parent/month"), console, fresh)
        response.set_cookie(
            anon_csrf.PARENT_COOKIE,
            anon_csrf.parent_device(console.csrf_key, access.kindergarten, access.child, now_s=now_s),
            max_age=anon_csrf.PARENT_TTL_S, path="/console", secure=console.secure, httponly=True,
            samesite="strict",
        )  # fmt: skip
        return response

    @router.get("/parent/month")
    async def parent_month(
        request: Request, month: str | None = None, reported: str | None = None, withdrawn: str | None = None
    ) -> Response:
        console = _console(request)
        session = await _session(request)
        if session is None or session.parent_child is None or session.parent_kindergarten is None:
            return _to("/console/parent")
        month = month or _this_month(console)
        try:
            ctx = await run_in_threadpool(
                _parent_month, console.store, session.parent_kindergarten, session.parent_child, month,
                console.signer,
            )  # fmt: skip
            from register.console.report import withdrawable_days  # noqa: PLC0415 - notify imports the tabel

            ctx["withdrawable"] = await run_in_threadpool(
                withdrawable_days, console.store, session.parent_kindergarten, session.parent_child,
                ctx["timezone"], now_ms=console.now_ms(),
            )  # fmt: skip
        except RegisterError as exc:
            return _page("error.html", status=400, session=session, error=str(exc))
        page = _page(
            "parent_month.html",
            withdrawn=withdrawn,
            session=session,
            lang=_visitor_lang(request),
            title=ctx["name"],
            month=month,
            reported=reported,
            **ctx,
        )
        return _remember_lang(request, page)

    @router.get("/parent/statement.json")
    async def parent_statement(request: Request, month: str) -> Response:
        console = _console(request)
        session = await _session(request)
        if session is None or session.parent_child is None or session.parent_kindergarten is None:
            return _to("/console/parent")
        try:
            statement = await run_in_threadpool(
                build_statement,
                console.store,
                session.parent_child,
                month,
                kindergarten_name=session.parent_kindergarten,
                signer=console.signer,
            )
        except RegisterError as exc:
            return _page("error.html", status=400, session=session, error=str(exc))
        headers = {**_HEADERS, "Content-Disposition": 'attachment; filename="statement.json"'}
        return Response(statement.data, media_type="application/json", headers=headers)

    return router


def _who(user: User) -> str:
    return f"{user.name} ({user.role}{': ' + user.scope if user.scope else ''})"


def _this_month(console: Console) -> str:
    return dt.datetime.fromtimestamp(console.clock(), ZoneInfo("Asia/Almaty")).strftime("%Y-%m")


def _overview(store: Store, user: User) -> list[dict[str, Any]]:
    """The kindergartens ``user`` sees, with their device and child counts."""
    visible = visible_kindergartens(store, user)
    with store._tx(write=False) as sql:
        devices = dict(sql.all("SELECT kindergarten, count(*) FROM devices GROUP BY kindergarten"))
        children = dict(sql.all("SELECT kindergarten, count(*) FROM roster_children GROUP BY kindergarten"))
    names = sorted(set(devices) | set(children) | (visible or set()))
    return [
        {"name": k, "devices": int(devices.get(k, 0)), "children": int(children.get(k, 0))}
        for k in names
        if visible is None or k in visible
    ]


def _kindergarten(store: Store, user: User, kindergarten: str) -> dict[str, Any] | None:
    visible = visible_kindergartens(store, user)
    if visible is not None and kindergarten not in visible:
        return None
    with store._tx(write=False) as sql:
        children = sql.all(
            "SELECT id, name, grp FROM roster_children WHERE kindergarten = ? ORDER BY grp, name",
            (kindergarten,),
        )
    devices = [d for d in store.devices() if d.kindergarten == kindergarten]
    if not children and not devices:
        return None
    return {
        "devices": [
            {
                "id": d.id,
                "gate": d.gate,
                "origin": d.origin,
                "size": d.size,
                "last_seen": "—"
                if d.last_seen_ms is None
                else dt.datetime.fromtimestamp(d.last_seen_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            }
            for d in devices
        ],
        "children": [{"id": c[0], "name": c[1], "group": c[2]} for c in children],
    }


def _parent_month(
    store: Store, kindergarten: str, child: str, month: str, signer: CosignatureSigner | None
) -> dict[str, Any]:
    """The child's month, from the same verified statement the parent may download."""
    _, name = child_home(store, child, kindergarten)
    statement = build_statement(store, child, month, kindergarten_name=kindergarten, signer=signer)
    v = statement.verified
    tz = ZoneInfo(v.timezone)
    gates = {d.origin: d.gate for d in store.devices()}
    rows = []
    for proven in sorted(v.entries, key=lambda p: p.entry.time_ms):
        local = dt.datetime.fromtimestamp(proven.entry.time_ms / 1000, tz)
        rows.append(
            {
                "date": local.date().isoformat(),
                "time": local.strftime("%H:%M"),
                "kind": proven.entry.kind,
                "method": proven.entry.method or "",
                "gate": gates.get(proven.origin, proven.origin),
            }
        )
    return {"name": name, "kindergarten": kindergarten, "timezone": v.timezone, "entries": rows}


def mount_console(
    app: FastAPI,
    store: Store,
    *,
    secure: bool,
    clock: Callable[[], float] = time.time,
    policy: LoginPolicy = DEFAULT_POLICY,
    trusted_proxies: Collection[str] = (),
) -> None:
    """Add the console's routes to the register's ``app`` (only when ``--console`` asks for it).

    ``trusted_proxies``: the addresses of reverse proxies whose ``X-Forwarded-For`` names the client
    (:func:`client_address`); every other peer is the client itself.
    """
    from register.console.pages import pages_router  # noqa: PLC0415 - it imports this module's helpers
    from register.notify.report_web import report_router  # noqa: PLC0415

    ctx = getattr(app.state, "ctx", None)  # the register's app: its cosigner signs parents' statements
    signer = None if ctx is None else ctx.register.cosigner
    proxies = frozenset(str(ipaddress.ip_address(a)) for a in trusted_proxies)
    app.state.console = Console(
        store,
        secure,
        clock,
        policy,
        anon_csrf.console_key(store),
        signer=signer,
        trusted_proxies=proxies,
    )
    app.include_router(console_router())
    app.include_router(pages_router())
    app.include_router(
        report_router()
    )  # "my child was not there" from a message's link (docs/notifications.md)
