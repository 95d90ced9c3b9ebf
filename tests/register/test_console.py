"""The web console over loopback HTTP (requests against a real uvicorn server), SQLite and PostgreSQL.

Login and logout, cookie flags, CSRF refusal, role isolation by URL editing, the parent page from an
access code to a statement that verifies offline, and the console being off unless mounted.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import requests
import uvicorn

from ledger.note import CosignatureSigner
from ledger.statement import verify_statement
from register.app import create_app
from register.console import mount_console
from register.kindergartens import set_district
from register.parent_codes import create_parent_code
from register.service import Register
from register.store import Store, open_store
from register.users import LoginPolicy, add_user
from tests.conftest import free_port
from tests.register.test_statement import Built, built  # noqa: F401 - the fixture, reused

PASSWORD = "correct horse battery"
POLICY = LoginPolicy(max_failures=3, address_max_failures=50, lockout_s=600)


@dataclass
class Console:
    url: str
    store: Store
    register_vkey: str
    code: str
    store_url: str

    def client(self) -> requests.Session:
        return requests.Session()


def _start(
    store: Store, *, console: bool, cosigner: CosignatureSigner | None = None
) -> tuple[str, Callable[[], None]]:
    app = create_app(Register(store, cosigner or CosignatureSigner.generate("other.test")))
    if console:
        mount_console(app, store, secure=False, policy=POLICY)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "console did not start"
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return f"http://127.0.0.1:{port}", stop


@pytest.fixture
def console(built: Built) -> Iterator[Console]:  # noqa: F811
    store = open_store(built.db)
    set_district(store, "K1", "Almaly")
    set_district(store, "K2", "Bostandyk")
    add_user(store, "dir1", "director", "K1", PASSWORD, now_ms=0)
    add_user(store, "dist", "district", "Bostandyk", PASSWORD, now_ms=0, language="kk")
    add_user(store, "aud", "auditor", None, PASSWORD, now_ms=0, language="en")
    code = create_parent_code(store, "K1", "A", now_ms=0)
    url, stop = _start(store, console=True, cosigner=built.cosigner)  # it signs the parents' statements
    # This server's Register recorded its own new key; the logs were cosigned by the fixture's.
    store.set_meta("cosigner_vkey", built.register_vkey)
    yield Console(url, store, built.register_vkey, code, built.db)
    stop()
    store.close()


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match[1]


def _login(c: Console, name: str, password: str = PASSWORD) -> tuple[requests.Session, requests.Response]:
    s = c.client()
    form = s.get(f"{c.url}/console/login", timeout=10)
    r = s.post(
        f"{c.url}/console/login",
        data={"csrf": _csrf(form.text), "name": name, "password": password},
        allow_redirects=False,
        timeout=10,
    )
    return s, r


def test_login_sets_a_strict_http_only_cookie_and_logout_ends_the_session(console: Console) -> None:
    s, r = _login(console, "dir1")
    assert r.status_code == 303 and r.headers["Location"] == "/console/"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP here; with --tls-cert the cookie is Secure
    home = s.get(f"{console.url}/console/", timeout=10)
    assert home.status_code == 200 and "K1" in home.text and "K2" not in home.text
    assert (
        "script" not in home.text.lower() and "default-src 'none'" in home.headers["Content-Security-Policy"]
    )
    old = {name: str(value) for name, value in s.cookies.items()}
    out = s.post(
        f"{console.url}/console/logout", data={"csrf": _csrf(home.text)}, allow_redirects=False, timeout=10
    )
    assert out.status_code == 303
    again = requests.get(f"{console.url}/console/", cookies=old, allow_redirects=False, timeout=10)
    assert again.status_code == 303 and again.headers["Location"] == "/console/login"


def test_wrong_password_and_lockout(console: Console) -> None:
    for _ in range(POLICY.max_failures):
        assert _login(console, "dir1", "not the password")[1].status_code == 401
    _, r = _login(console, "dir1")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0


def test_a_form_without_its_csrf_token_is_refused(console: Console) -> None:
    s = console.client()
    s.get(f"{console.url}/console/login", timeout=10)
    r = s.post(f"{console.url}/console/login", data={"name": "dir1", "password": PASSWORD}, timeout=10)
    assert r.status_code == 403
    r = s.post(
        f"{console.url}/console/login",
        data={"csrf": "x" * 43, "name": "dir1", "password": PASSWORD},
        timeout=10,
    )
    assert r.status_code == 403
    logged, _ = _login(console, "dir1")
    r = logged.post(f"{console.url}/console/logout", data={}, timeout=10)
    assert r.status_code == 403
    assert logged.get(f"{console.url}/console/", timeout=10).status_code == 200  # still logged in


def test_role_isolation_by_editing_the_url(console: Console) -> None:
    director, _ = _login(console, "dir1")
    assert director.get(f"{console.url}/console/k/K1", timeout=10).status_code == 200
    assert "Әлия Серікқызы" in director.get(f"{console.url}/console/k/K1", timeout=10).text
    assert director.get(f"{console.url}/console/k/K2", timeout=10).status_code == 404
    district, _ = _login(console, "dist")
    assert district.get(f"{console.url}/console/k/K2", timeout=10).status_code == 200
    assert district.get(f"{console.url}/console/k/K1", timeout=10).status_code == 404
    auditor, _ = _login(console, "aud")
    for k in ("K1", "K2"):
        assert auditor.get(f"{console.url}/console/k/{k}", timeout=10).status_code == 200
    assert "Kindergartens" in auditor.get(f"{console.url}/console/", timeout=10).text  # English for aud
    anonymous = requests.get(f"{console.url}/console/k/K1", allow_redirects=False, timeout=10)
    assert anonymous.status_code == 303


def test_parent_page_shows_the_month_and_offers_a_statement_that_verifies(console: Console) -> None:
    s = console.client()
    form = s.get(f"{console.url}/console/parent", timeout=10)
    r = s.post(
        f"{console.url}/console/parent",
        data={"csrf": _csrf(form.text), "code": "AAAA-BBBB-CCCC-DDDD"},
        timeout=10,
    )
    assert r.status_code == 401
    r = s.post(
        f"{console.url}/console/parent",
        data={"csrf": _csrf(r.text), "code": console.code.lower()},
        timeout=10,
    )
    assert r.status_code == 200 and r.url.endswith("/console/parent/month"), r.text
    month = s.get(f"{console.url}/console/parent/month", params={"month": "2026-11"}, timeout=10)
    assert month.status_code == 200
    assert month.text.count("<td>2026-11-") == 5 and "north" in month.text and "south" in month.text
    statement = s.get(f"{console.url}/console/parent/statement.json", params={"month": "2026-11"}, timeout=10)
    assert statement.status_code == 200 and "attachment" in statement.headers["Content-Disposition"]
    verified = verify_statement(statement.content, console.register_vkey)
    assert verified.child == "A" and len(verified.entries) == 5
    # a parent session opens nothing else
    assert s.get(f"{console.url}/console/k/K1", allow_redirects=False, timeout=10).status_code == 303


def test_a_parent_chooses_the_language_and_it_is_remembered(console: Console) -> None:
    s = console.client()
    assert "Код доступа" in s.get(f"{console.url}/console/parent", timeout=10).text  # Russian by default
    kk = s.get(f"{console.url}/console/parent", params={"lang": "kk"}, timeout=10)
    assert 'lang="kk"' in kk.text and "Кіру коды" in kk.text
    again = s.get(f"{console.url}/console/parent", timeout=10)  # the choice is kept in a cookie
    assert "Кіру коды" in again.text and "Код доступа" not in again.text
    en = s.get(f"{console.url}/console/parent", params={"lang": "xx"}, timeout=10)  # unknown: the cookie's
    assert "Кіру коды" in en.text
    assert "Access code" in s.get(f"{console.url}/console/parent", params={"lang": "en"}, timeout=10).text


def test_console_is_off_unless_mounted(built: Built) -> None:  # noqa: F811
    with open_store(built.db) as store:
        url, stop = _start(store, console=False)
        try:
            assert requests.get(f"{url}/console/login", timeout=10).status_code == 404
        finally:
            stop()
