"""Console users, login throttling and lockout, the audit trail, parent codes: on SQLite and PostgreSQL.

The clock is the only fake (``now_ms`` passed in); the database is real and reopened where a lock must
survive a restart.
"""

from __future__ import annotations

import io
import json
import threading

import pytest

import register.users as users_module
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


def test_login_lockout_per_user_and_address_doubles_and_survives_a_restart(db_url: str) -> None:
    with open_store(db_url) as store:
        add_user(store, "aigul", "director", "K1", PASSWORD, now_ms=T0)
        assert login(store, "aigul", PASSWORD, address="10.0.0.1", now_ms=T0, policy=POLICY).name == "aigul"
        for i in range(POLICY.max_failures):
            with pytest.raises(BadCredentials, match="wrong name, password or code"):
                login(store, "aigul", f"guess {i}", address="198.51.100.9", now_ms=T0 + i, policy=POLICY)
    with open_store(db_url) as store:  # the lock survives a restart
        with pytest.raises(LockedOut) as locked:  # even the right password, from the failing address
            login(store, "aigul", PASSWORD, address="198.51.100.9", now_ms=T0 + 1000, policy=POLICY)
        assert POLICY.lockout_s - 2 <= locked.value.retry_after <= POLICY.lockout_s
        # ... but never from an address that has not failed
        assert login(store, "aigul", PASSWORD, address="10.0.0.1", now_ms=T0 + 1000, policy=POLICY).name
        end = T0 + 2 + POLICY.lockout_s * 1000
        with pytest.raises(LockedOut):
            login(store, "aigul", PASSWORD, address="198.51.100.9", now_ms=end - 1, policy=POLICY)
        # the lock ended: one more attempt gets through; failing, it locks twice as long
        with pytest.raises(BadCredentials):
            login(store, "aigul", "guess again", address="198.51.100.9", now_ms=end, policy=POLICY)
        with pytest.raises(LockedOut) as locked:
            login(store, "aigul", PASSWORD, address="198.51.100.9", now_ms=end + 1000, policy=POLICY)
        assert 2 * POLICY.lockout_s - 2 <= locked.value.retry_after <= 2 * POLICY.lockout_s
        after = end + 2 * POLICY.lockout_s * 1000
        assert (
            login(store, "aigul", PASSWORD, address="198.51.100.9", now_ms=after, policy=POLICY).role
            == "director"
        )
        with store._tx(write=False) as sql:  # success cleared the pair, the address keeps its count
            rows = dict(sql.all("SELECT subject, failures FROM login_throttle"))
        assert rows == {"addr:198.51.100.9": POLICY.max_failures + 1, "addr:10.0.0.1": 0}
        actions = [(a.actor, a.action) for a in audit_log(store)]
    assert ("cli", "user add") in actions
    assert actions.count(("user:aigul", "login failed")) == POLICY.max_failures + 1
    assert actions.count(("user:aigul", "login refused")) == 3 and actions[-1] == ("user:aigul", "login")


def test_the_director_logs_in_from_her_address_after_an_attackers_wrong_passwords(db_url: str) -> None:
    """Issue 17: 5 wrong passwords used to lock a user from every address, and one address could lock
    every user; now an attacker's failures lock only the attacker's address."""
    policy = LoginPolicy(max_failures=3, address_max_failures=20, lockout_s=600)
    attacker = "203.0.113.66"
    outcomes: dict[str, list[str]] = {}
    with open_store(db_url) as store:
        users = ("director", "auditor1", "auditor2")
        for name in users:
            add_user(store, name, "auditor", None, PASSWORD, now_ms=T0)
        for i, name in enumerate([*users * 10, *(f"someone{j}" for j in range(15))]):
            try:
                login(store, name, f"wrong {i}", address=attacker, now_ms=T0 + i, policy=policy)
                outcomes.setdefault(name, []).append("ok")
            except LockedOut:
                outcomes.setdefault(name, []).append("locked")
            except BadCredentials:
                outcomes.setdefault(name, []).append("wrong")
        for name in users:  # each user's pair at the attacker's address locked after 3
            assert outcomes[name] == ["wrong"] * 3 + ["locked"] * 7, outcomes[name]
        # the address: 9 failures for the users, 11 for other names, then locked for everyone
        assert sum(o == ["wrong"] for o in outcomes.values()) == 11
        with pytest.raises(LockedOut):
            login(store, "auditor1", "anything at all", address=attacker, now_ms=T0 + 100, policy=policy)
        for name in users:  # ... and from their own addresses the users log in
            assert (
                login(store, name, PASSWORD, address="10.0.0.1", now_ms=T0 + 100, policy=policy).name == name
            )
        with pytest.raises(LockedOut):
            login(store, "director", PASSWORD, address=attacker, now_ms=T0 + 100, policy=policy)


def test_an_ipv6_attacker_counts_as_its_64(db_url: str) -> None:
    with open_store(db_url) as store:
        add_user(store, "aigul", "director", "K1", PASSWORD, now_ms=T0)
        for i in range(POLICY.max_failures):
            with pytest.raises(BadCredentials):
                login(
                    store, "aigul", "nope nope", address=f"2001:db8:1:2::{i + 1:x}", now_ms=T0, policy=POLICY
                )
        with pytest.raises(LockedOut):
            login(store, "aigul", PASSWORD, address="2001:db8:1:2:ffff::9", now_ms=T0, policy=POLICY)
        assert login(store, "aigul", PASSWORD, address="2001:db8:1:3::1", now_ms=T0, policy=POLICY).name


def test_the_stored_hash_is_not_a_password(db_url: str) -> None:
    """Catches a plain-text fallback after an Argon2 mismatch (the stored hash accepted as a password)."""
    with open_store(db_url) as store:
        add_user(store, "aigul", "director", "K1", PASSWORD, now_ms=T0)
        with store._tx(write=False) as sql:
            (pw_hash,) = sql.one("SELECT pw_hash FROM users WHERE name = ?", ("aigul",))
        for guess in (pw_hash, pw_hash.split("$")[-1], PASSWORD.upper(), PASSWORD + " "):
            with pytest.raises(BadCredentials):
                login(store, "aigul", guess, address="10.0.0.1", now_ms=T0, policy=LoginPolicy())
        assert login(store, "aigul", PASSWORD, address="10.0.0.1", now_ms=T0, policy=POLICY).name == "aigul"


def test_30_concurrent_wrong_passwords_check_the_password_at_most_5_times(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock check and the failure charge are one transaction before the Argon2 check: 30 threads
    guessing at once (each its own transaction; PostgreSQL: its own connection) get 5 checks."""
    policy = LoginPolicy(max_failures=5, address_max_failures=20, lockout_s=600)
    checks: list[str] = []
    real = users_module._hasher

    class Counting:
        def verify(self, pw_hash: str, password: str) -> bool:
            checks.append(password)
            return real.verify(pw_hash, password)

    with open_store(db_url) as store:
        add_user(store, "aigul", "director", "K1", PASSWORD, now_ms=T0)
        monkeypatch.setattr(users_module, "_hasher", Counting())
        start = threading.Barrier(30)
        outcomes: list[str] = []

        def guess(i: int) -> None:
            start.wait()
            try:
                login(store, "aigul", f"guess number {i}", address="203.0.113.5", now_ms=T0, policy=policy)
            except LockedOut:
                outcomes.append("locked")
            except BadCredentials:
                outcomes.append("wrong")
            except Exception as exc:
                outcomes.append(repr(exc))

        threads = [threading.Thread(target=guess, args=(i,)) for i in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert sorted(set(outcomes)) == ["locked", "wrong"], outcomes
        assert len(checks) == outcomes.count("wrong") == policy.max_failures, (len(checks), outcomes)
        with store._tx(write=False) as sql:
            failures = sql.one(
                "SELECT failures FROM login_throttle WHERE subject = ?", ("user:aigul@203.0.113.5",)
            )[0]
        assert failures == policy.max_failures
        # and from another address she still logs in
        assert login(store, "aigul", PASSWORD, address="10.0.0.1", now_ms=T0, policy=policy).name == "aigul"


def test_an_empty_or_impossible_form_writes_nothing(db_url: str) -> None:
    with open_store(db_url) as store:
        for name, password in (("", PASSWORD), ("aigul", ""), ("Aigul Robert'); --", PASSWORD)):
            with pytest.raises(BadCredentials):
                login(store, name, password, address="10.0.0.1", now_ms=T0, policy=POLICY)
        for code in ("", "1234", "AAAA-BBBB-CCCC-DDDU", "x" * 5000):
            with pytest.raises(BadCredentials):
                verify_parent_code(store, code, address="10.0.0.1", now_ms=T0, policy=POLICY)
        with store._tx(write=False) as sql:
            assert sql.one("SELECT count(*) FROM login_throttle")[0] == 0
        assert audit_log(store) == []


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
        for i in range(POLICY.address_max_failures - 1):
            with pytest.raises(BadCredentials):
                verify_parent_code(
                    store, f"AAAA-BBBB-CCCC-DDD{i}", address="10.9.9.9", now_ms=T0, policy=POLICY
                )
        # a parent's right code behind the same address refunds only its own charge
        assert verify_parent_code(store, code, address="10.9.9.9", now_ms=T0, policy=POLICY).child == "A"
        with pytest.raises(BadCredentials):
            verify_parent_code(store, "AAAA-BBBB-CCCC-DDDZ", address="10.9.9.9", now_ms=T0, policy=POLICY)
        with pytest.raises(LockedOut):
            verify_parent_code(store, code, address="10.9.9.9", now_ms=T0 + 1, policy=POLICY)
        assert verify_parent_code(store, code, address="10.9.9.8", now_ms=T0 + 1, policy=POLICY).child == "A"
        with pytest.raises(Exception, match="no child 'Z'"):
            create_parent_code(store, "K1", "Z", now_ms=T0)
