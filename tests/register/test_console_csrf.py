"""Anonymous forms hold no server state: stateless signed CSRF tokens over loopback HTTP (real uvicorn).

A flood of cookie-less visits to the login and parent forms writes nothing to ``console_sessions``; a
POST with a missing, forged, expired or another visitor's token is refused; logging in (or a parent
code) writes exactly one fresh session, whose id the client could not have chosen.
"""

from __future__ import annotations

import http.cookiejar
import time

import requests

from register.console.csrf import ANON_COOKIE, TOKEN_TTL_S, console_key, make_token
from register.console.sessions import _hash
from tests.register.test_console import PASSWORD, Console, _csrf, _login, console  # noqa: F401 - the fixture
from tests.register.test_statement import built  # noqa: F401 - the fixture `console` uses


def _cookie(jar: requests.cookies.RequestsCookieJar, name: str) -> str:
    value = jar.get(name)
    assert value is not None, name
    return str(value)


def _rows(c: Console) -> list[tuple[str, int | None, str | None]]:
    with c.store._tx(write=False) as sql:
        rows = sql.all("SELECT id_hash, user_id, parent_child FROM console_sessions ORDER BY created_ms")
    return [(str(r[0]), r[1], r[2]) for r in rows]


def _meta_rows(c: Console) -> int:
    with c.store._tx(write=False) as sql:
        return int(sql.one("SELECT count(*) FROM meta")[0])


def test_a_thousand_cookieless_visits_write_no_session(console: Console) -> None:  # noqa: F811
    meta = _meta_rows(console)
    s = requests.Session()  # keep-alive, but never sends or keeps a cookie
    s.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    tokens = set()
    for page in ("login", "parent"):
        for _ in range(1000):
            r = s.get(f"{console.url}/console/{page}", timeout=10)
            assert r.status_code == 200 and ANON_COOKIE in r.headers["Set-Cookie"]
            tokens.add(_csrf(r.text))
    assert _rows(console) == [] and _meta_rows(console) == meta
    assert len(tokens) == 2000  # each visitor's token is bound to their own random cookie


def test_anonymous_posts_without_the_right_token_are_refused(console: Console) -> None:  # noqa: F811
    s = requests.Session()
    good = _csrf(s.get(f"{console.url}/console/login", timeout=10).text)
    nonce = _cookie(s.cookies, ANON_COOKIE)
    key = console_key(console.store)
    now = int(time.time())
    other = requests.Session()
    other_token = _csrf(other.get(f"{console.url}/console/parent", timeout=10).text)
    refused = {
        "missing": None,
        "empty": "",
        "forged": f"{now + 600}.{'A' * 43}",
        "expired": make_token(key, nonce, now_s=now - TOKEN_TTL_S - 1),
        "another visitor's": other_token,
        "a longer life": f"{now + 10**6}.{good.split('.')[1]}",  # the MAC covers the expiry
        "another key": make_token(b"k" * 43, nonce, now_s=now),
    }
    for why, token in refused.items():
        for path, form in (
            ("login", {"name": "dir1", "password": PASSWORD}),
            ("parent", {"code": console.code}),
        ):
            data = form if token is None else {**form, "csrf": token}
            r = s.post(f"{console.url}/console/{path}", data=data, allow_redirects=False, timeout=10)
            assert r.status_code == 403, (why, path)
    # the right token without its cookie (a cross-site POST carries none with SameSite=Strict)
    bare = requests.post(
        f"{console.url}/console/login", data={"csrf": good, "name": "dir1", "password": PASSWORD}, timeout=10
    )
    assert bare.status_code == 403
    assert _rows(console) == []
    r = s.post(
        f"{console.url}/console/login",
        data={"csrf": good, "name": "dir1", "password": PASSWORD},
        allow_redirects=False,
        timeout=10,
    )
    assert r.status_code == 303  # the same visitor with its own token still gets in


def test_login_writes_one_fresh_session_the_client_did_not_choose(console: Console) -> None:  # noqa: F811
    s = requests.Session()
    s.cookies.set("kgate_session", "chosen-by-an-attacker", domain="127.0.0.1", path="/console")
    form = s.get(f"{console.url}/console/login", timeout=10)
    wrong = s.post(
        f"{console.url}/console/login",
        data={"csrf": _csrf(form.text), "name": "dir1", "password": "not it"},
        timeout=10,
    )
    assert wrong.status_code == 401 and _rows(console) == []  # a failed login stores nothing either
    r = s.post(
        f"{console.url}/console/login",
        data={"csrf": _csrf(wrong.text), "name": "dir1", "password": PASSWORD},
        allow_redirects=False,
        timeout=10,
    )
    assert r.status_code == 303 and r.headers["Location"] == "/console/"
    first = _cookie(r.cookies, "kgate_session")
    assert first != "chosen-by-an-attacker" and ANON_COOKIE not in s.cookies  # the anonymous cookie is gone
    rows = _rows(console)
    assert len(rows) == 1 and rows[0][0] == _hash(first) and rows[0][1] is not None
    # logging in again from a live session replaces it (the old id stops working)
    again, r2 = _login_from(s, console)
    assert r2.status_code == 303 and _cookie(r2.cookies, "kgate_session") != first
    assert [row[0] for row in _rows(console)] == [_hash(_cookie(r2.cookies, "kgate_session"))]
    old = requests.get(
        f"{console.url}/console/", cookies={"kgate_session": first}, allow_redirects=False, timeout=10
    )
    assert old.status_code == 303 and again.get(f"{console.url}/console/", timeout=10).status_code == 200


def _login_from(s: requests.Session, c: Console) -> tuple[requests.Session, requests.Response]:
    form = s.get(f"{c.url}/console/login", timeout=10)
    r = s.post(
        f"{c.url}/console/login",
        data={"csrf": _csrf(form.text), "name": "dir1", "password": PASSWORD},
        allow_redirects=False,
        timeout=10,
    )
    return s, r


def test_a_parent_code_writes_one_parent_session(console: Console) -> None:  # noqa: F811
    s = requests.Session()
    form = s.get(f"{console.url}/console/parent", timeout=10)
    r = s.post(
        f"{console.url}/console/parent",
        data={"csrf": _csrf(form.text), "code": console.code},
        allow_redirects=False,
        timeout=10,
    )
    assert r.status_code == 303 and r.headers["Location"] == "/console/parent/month"
    rows = _rows(console)
    assert len(rows) == 1 and rows[0][2] == "A" and rows[0][0] == _hash(_cookie(r.cookies, "kgate_session"))
    _, logged = _login(console, "dir1")  # a director elsewhere: a second row, nothing else
    assert logged.status_code == 303 and len(_rows(console)) == 2
