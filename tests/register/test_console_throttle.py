"""Console login throttling over loopback HTTP (a real uvicorn server), SQLite and PostgreSQL: the client
address is the socket's unless a ``--trusted-proxy`` forwards it, and an attacker's wrong passwords lock
only the attacker's address (issue 17)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests
import uvicorn

from kgate.cli import main
from ledger.note import CosignatureSigner
from register.app import create_app
from register.console import mount_console
from register.parent_codes import create_parent_code
from register.roster_csv import Person
from register.server import ServeSettings, config
from register.service import Register
from register.store import Store, open_store
from register.store.roster import import_roster
from register.users import LoginPolicy, add_user, audit_log
from tests.conftest import free_port

PASSWORD = "correct horse battery"
POLICY = LoginPolicy(max_failures=3, address_max_failures=10, lockout_s=600)
ATTACKER = "203.0.113.9"
DIRECTOR = "198.51.100.20"


def _serve(store: Store, proxies: tuple[str, ...]) -> tuple[str, Callable[[], None]]:
    app = create_app(Register(store, CosignatureSigner.generate("other.test")))
    mount_console(app, store, secure=False, policy=POLICY, trusted_proxies=proxies)
    sock_port = free_port()
    server = uvicorn.Server(config(app, "127.0.0.1", sock_port, ServeSettings()))  # as `register serve`
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "console did not start"
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return f"http://127.0.0.1:{sock_port}", stop


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with open_store(db_url) as s:
        add_user(s, "dir1", "director", "K1", PASSWORD, now_ms=0)
        add_user(s, "aud", "auditor", None, PASSWORD, now_ms=0)
        yield s


def _login(url: str, name: str, password: str, forwarded: str | None = None) -> int:
    s = requests.Session()
    headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
    form = s.get(f"{url}/console/login", headers=headers, timeout=10)
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token, form.text
    r = s.post(
        f"{url}/console/login",
        data={"csrf": token[1], "name": name, "password": password},
        headers=headers,
        allow_redirects=False,
        timeout=10,
    )
    return r.status_code


def test_x_forwarded_for_from_a_client_is_not_its_address(store: Store) -> None:
    url, stop = _serve(store, ())
    try:
        for i in range(POLICY.max_failures):  # a fresh forged address every time
            assert _login(url, "dir1", "wrong wrong", forwarded=f"10.{i}.0.1") == 401
        assert _login(url, "dir1", PASSWORD, forwarded="10.99.0.1") == 429
    finally:
        stop()
    assert {row.address for row in audit_log(store) if row.actor == "user:dir1"} == {"127.0.0.1"}


def test_behind_a_trusted_proxy_the_director_logs_in_after_an_attackers_wrong_passwords(store: Store) -> None:
    url, stop = _serve(store, ("127.0.0.1",))
    try:
        for i in range(2 * POLICY.address_max_failures):
            # the attacker writes the director's address first; the proxy appends the real one
            name = ("dir1", "aud", "nobody")[i % 3] if i < 2 * POLICY.max_failures else f"user{i}"
            status = _login(url, name, f"guess {i}", forwarded=f"{DIRECTOR}, {ATTACKER}")
            assert status == (401 if i < POLICY.address_max_failures else 429), (i, status)
        assert _login(url, "dir1", PASSWORD, forwarded=ATTACKER) == 429
        assert _login(url, "dir1", PASSWORD, forwarded=DIRECTOR) == 303
        assert _login(url, "aud", PASSWORD, forwarded="2001:db8::7") == 303
        assert _login(url, "aud", PASSWORD, forwarded="not an address") == 303  # the proxy's own address
    finally:
        stop()
    addresses = [(row.action, row.address) for row in audit_log(store) if row.actor.startswith("user:")]
    assert ("login", DIRECTOR) in addresses and ("login", "127.0.0.1") in addresses
    assert {a for action, a in addresses if action != "login"} == {ATTACKER}


def test_serve_refuses_a_trusted_proxy_that_is_no_address(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["register", "serve", "--db", "/nonexistent/x.db", "--trusted-proxy", "proxy.example"])
    err = capsys.readouterr().err
    assert code == 2 and "--trusted-proxy 'proxy.example': expected an IP address" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def _code(url: str, s: requests.Session, code: str) -> int:
    form = s.get(f"{url}/console/parent", timeout=10)
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token, form.text
    r = s.post(
        f"{url}/console/parent", data={"csrf": token[1], "code": code}, allow_redirects=False, timeout=10
    )
    return r.status_code


def test_a_parent_who_used_the_console_is_not_locked_out_by_a_shared_address(store: Store) -> None:
    """Behind one carrier-NAT address (here every client is 127.0.0.1) an attacker's wrong codes lock the
    address for browsers that never entered a code; a parent's browser that did is throttled per child."""
    import_roster(store, "K1", [Person(0, "child", "A", "Әлия", "g", False, None, ())], now_ms=0)
    code = create_parent_code(store, "K1", "A", now_ms=0)
    url, stop = _serve(store, ())
    try:
        parent = requests.Session()
        assert _code(url, parent, code) == 303
        device = parent.cookies.get("kgate_parent")
        assert device
        attacker = requests.Session()
        statuses = [
            _code(url, attacker, f"AAAA-BBBB-CCCC-{i:04d}") for i in range(POLICY.address_max_failures + 2)
        ]
        assert statuses == [401] * POLICY.address_max_failures + [429, 429], statuses
        assert _code(url, requests.Session(), code) == 429  # a new browser behind that address waits
        forged = requests.Session()
        other_mac = device[:-2] + ("AA" if device[-2:] != "AA" else "BB")
        forged.cookies.set("kgate_parent", other_mac, path="/console")
        assert _code(url, forged, code) == 429
        assert _code(url, parent, code) == 303  # the parent's own browser is not locked
        # the attacker taking the parent's cookie gets that child's small budget, not a free one
        stolen = requests.Session()
        stolen.cookies.set("kgate_parent", device, path="/console")
        statuses = [_code(url, stolen, f"AAAA-BBBB-CCCC-{i:04d}") for i in range(POLICY.max_failures + 1)]
        assert statuses == [401] * POLICY.max_failures + [429], statuses
    finally:
        stop()
