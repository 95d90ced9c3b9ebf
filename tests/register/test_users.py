"""Console users, login throttling and lockout, the audit trail, parent codes: on SQLite and PostgreSQL.

The clock is the only fake (``now_ms`` passed in); the database is real and reopened where a lock must
survive a restart.
"""

from __future__ import annotations

import io
import json

import pytest

from kgate.cli import main
from register.errors import BadCredentials, ConfigError, LockedOut
from register.kindergartens import set_district
from register.parent_codes import create_parent_code, verify_parent_code
from register.roster_csv import Person
from register.store import open_store
from register.store.roster import import_roster
from register.users import LoginPolicy, add_user, audit_log, disable_user, login, may_see, record

PASSWORD = "correct horse battery"
T0 = 1_800_000_000_000
POLICY = LoginPolicy(max_failures=3, address_max_failures=5, lockout_s=600)


def _cli(monkeypatch: pytest.MonkeyPatch, stdin: str, *argv: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(list(argv))


def test_user_add_reads_the_password_from_stdin_and_stores_only_argon2id(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["register", "init", "--db", db_url]) == 0  # only init and serve create a database
    assert (
        _cli(
            monkeypatch,
            PASSWORD + "\n",
            "register",
            "user",
            "add",
            "aigul",
            "--role",
            "director",
            "--scope",
            "K1",
            "--db",
            db_url,
        )
        == 0
    )
    assert main(["register", "user", "list", "--json", "--db", db_url]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert rows == [
        {
            "name": "aigul",
            "role": "director",
            "scope": "K1",
            "language": "ru",
            "disabled": False,
            "created_ms": rows[0]["created_ms"],
        }
    ]
    with open_store(db_url) as store, store._tx(write=False) as sql:
        (pw_hash,) = sql.one("SELECT pw_hash FROM users WHERE name = ?", ("aigul",))
    assert pw_hash.startswith("$argon2id$") and PASSWORD not in pw_hash
    # too short, no scope for a director, a scope for an auditor: one line each, nothing added
    assert (
        _cli(monkeypatch, "short\n", "register", "user", "add", "b", "--role", "auditor", "--db", db_url) == 2
    )
    assert "10 to 1024 characters" in capsys.readouterr().err
    assert (
        _cli(monkeypatch, PASSWORD, "register", "user", "add", "b", "--role", "director", "--db", db_url) == 2
    )
    assert "needs --scope" in capsys.readouterr().err
    assert (
        _cli(
            monkeypatch,
            PASSWORD,
            "register",
            "user",
            "add",
            "b",
            "--role",
            "auditor",
            "--scope",
            "K1",
            "--db",
            db_url,
        )
        == 2
    )
    assert (
        _cli(monkeypatch, PASSWORD, "register", "user", "add", "aigul", "--role", "auditor", "--db", db_url)
        == 2
    )
    assert "exists already" in capsys.readouterr().err
    assert main(["register", "user", "disable", "aigul", "--db", db_url]) == 0
    assert main(["register", "user", "list", "--db", db_url]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("disabled")


def test_login_wrong_password_lockout_and_unlock_after_the_period(db_url: str) -> None:
    with open_store(db_url) as store:
        add_user(store, "aigul", "director", "K1", PASSWORD, now_ms=T0)
        assert login(store, "aigul", PASSWORD, address="10.0.0.1", now_ms=T0, policy=POLICY).name == "aigul"
        for i in range(POLICY.max_failures):
            with pytest.raises(BadCredentials, match="wrong name, password or code"):
                login(store, "aigul", f"guess {i}", address=f"10.0.1.{i}", now_ms=T0 + i, policy=POLICY)
    with open_store(db_url) as store:  # the lock survives a restart
        with pytest.raises(LockedOut) as locked:
            login(store, "aigul", PASSWORD, address="10.0.0.1", now_ms=T0 + 1000, policy=POLICY)
        assert 590 <= locked.value.retry_after <= 600
        still = T0 + 2 + POLICY.lockout_s * 1000 - 1
        with pytest.raises(LockedOut):
            login(store, "aigul", PASSWORD, address="10.0.0.1", now_ms=still, policy=POLICY)
        after = T0 + 2 + POLICY.lockout_s * 1000
        assert (
            login(store, "aigul", PASSWORD, address="10.0.0.1", now_ms=after, policy=POLICY).role
            == "director"
        )
        actions = [(a.actor, a.action) for a in audit_log(store)]
    assert ("cli", "user add") in actions
    assert actions.count(("user:aigul", "login failed")) == POLICY.max_failures
    assert actions.count(("user:aigul", "login refused")) == 2 and actions[-1] == ("user:aigul", "login")


def test_one_address_guessing_many_users_is_locked(db_url: str) -> None:
    with open_store(db_url) as store:
        for name in ("a1", "a2", "a3"):
            add_user(store, name, "auditor", None, PASSWORD, now_ms=T0)
        for i in range(POLICY.address_max_failures):
            with pytest.raises(BadCredentials):
                login(
                    store,
                    f"a{i % 3 + 1}",
                    "nope nope nope",
                    address="192.0.2.7",
                    now_ms=T0 + i,
                    policy=POLICY,
                )
        with pytest.raises(LockedOut):  # even with the right password, from that address
            login(store, "a1", PASSWORD, address="192.0.2.7", now_ms=T0 + 100, policy=POLICY)
        assert login(store, "a1", PASSWORD, address="192.0.2.8", now_ms=T0 + 100, policy=POLICY).name == "a1"


def test_disabled_and_unknown_users_cannot_log_in(db_url: str) -> None:
    with open_store(db_url) as store:
        add_user(store, "aigul", "director", "K1", PASSWORD, now_ms=T0)
        disable_user(store, "aigul", now_ms=T0)
        with pytest.raises(BadCredentials):
            login(store, "aigul", PASSWORD, address="10.0.0.1", now_ms=T0, policy=POLICY)
        with pytest.raises(BadCredentials):
            login(store, "nobody", PASSWORD, address="10.0.0.1", now_ms=T0, policy=POLICY)


def test_audit_trail_is_append_only(db_url: str) -> None:
    with open_store(db_url) as store:
        record(store, "aigul", "tabel submit", "K1 2026-11", now_ms=T0, address="10.0.0.1")
        for statement in ("UPDATE audit SET actor = 'someone else'", "DELETE FROM audit"):
            with pytest.raises(Exception, match="append-only"), store._tx(write=True) as sql:
                sql.run(statement)
        [row] = audit_log(store)
    assert (row.actor, row.action, row.detail, row.address, row.time_ms) == (
        "aigul",
        "tabel submit",
        "K1 2026-11",
        "10.0.0.1",
        T0,
    )


def test_roles_see_their_scope_only(db_url: str) -> None:
    with open_store(db_url) as store:
        set_district(store, "K1", "Almaly")
        set_district(store, "K2", "Bostandyk")
        director = add_user(store, "dir1", "director", "K1", PASSWORD, now_ms=T0)
        district = add_user(store, "dist", "district", "Almaly", PASSWORD, now_ms=T0)
        auditor = add_user(store, "aud", "auditor", None, PASSWORD, now_ms=T0)
        assert may_see(store, director, "K1") and not may_see(store, director, "K2")
        assert may_see(store, district, "K1") and not may_see(store, district, "K2")
        assert may_see(store, auditor, "K1") and may_see(store, auditor, "K2")
        with pytest.raises(ConfigError):
            add_user(store, "x", "superuser", None, PASSWORD, now_ms=T0)


def test_parent_codes(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with open_store(db_url) as store:
        import_roster(store, "K1", [Person(0, "child", "A", "Әлия", "g", False, None, ())], now_ms=0)
    assert main(["register", "parent-code", "create", "--child", "A", "--db", db_url]) == 0
    code, place, child, name = capsys.readouterr().out.strip().split("\t")
    assert (place, child, name) == ("K1", "A", "Әлия") and len(code) == 19
    with open_store(db_url) as store:
        with store._tx(write=False) as sql:
            stored = [str(v) for row in sql.all("SELECT * FROM parent_codes") for v in row]
        assert not any(code.replace("-", "") in v.replace("-", "") for v in stored)  # only a hash
        access = verify_parent_code(store, code, address="10.0.0.1", now_ms=T0, policy=POLICY)
        assert (access.kindergarten, access.child) == ("K1", "A")
        typed = code.lower().replace("-", " ").replace("0", "o")  # what a parent may type
        assert verify_parent_code(store, typed, address="10.0.0.1", now_ms=T0, policy=POLICY).child == "A"
        for i in range(POLICY.max_failures):
            with pytest.raises(BadCredentials):
                verify_parent_code(
                    store, f"AAAA-BBBB-CCCC-DDD{i}", address="10.9.9.9", now_ms=T0, policy=POLICY
                )
        with pytest.raises(LockedOut):
            verify_parent_code(store, code, address="10.9.9.9", now_ms=T0 + 1, policy=POLICY)
        with pytest.raises(Exception, match="no child 'Z'"):
            create_parent_code(store, "K1", "Z", now_ms=T0)
