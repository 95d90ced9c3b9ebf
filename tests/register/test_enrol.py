"""Origins, one-time-token enrolment, revocation, replacement: a real server on loopback, both backends."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from kgate.cli import main
from ledger.enrolment import proof_message
from ledger.keys import load_key
from ledger.note import Ed25519Signer
from register.enrol import Enrolment
from register.errors import BadOrigin, DuplicateDevice
from register.limits import Limits
from register.origins import check_origin
from register.verify import verify_register
from sync_agent.enrol import enrol
from sync_agent.errors import RejectedError
from tests.register.conftest import REGISTER, Server, make_device


def _enrolment(server: Server, clock: float | None = None) -> Enrolment:
    when = time.time if clock is None else (lambda: clock)
    return Enrolment(server.store, REGISTER, server.cosigner.vkey, clock=when)


def _devices(server: Server) -> list[str]:
    return [d.origin for d in server.store.devices()]


@pytest.mark.parametrize(
    "origin",
    [
        "reg.test/kgate/dev\u0430",  # Cyrillic а
        "reg.test/kgate/\u0440oom",  # Cyrillic р
        "reg.test/kgate/dev1\u202e",  # bidi override
        "reg.test/kgate/Dev1",  # uppercase
        "REG.TEST/kgate/dev1",
        "reg.test/kgate/dev1\n",
        "reg.test/kgate/-dev",
        "reg.test/kgate/dev_1",
        "reg.test/kgate/a/b",
        "other.test/kgate/dev1",  # out of prefix
        "reg.test.evil/kgate/dev1",
        "reg.test/KGATE/dev1",
        "reg.test/kgate/" + "a" * 64,
    ],
)
def test_look_alike_and_out_of_prefix_origins_are_refused(origin: str) -> None:
    with pytest.raises(BadOrigin):
        check_origin(origin, REGISTER)


def test_good_origin() -> None:
    assert check_origin("reg.test/kgate/k42-north-2", REGISTER) == "reg.test/kgate/k42-north-2"


def test_device_add_applies_the_origin_rules_and_one_device_per_gate(server: Server) -> None:
    for bad in ("reg.test/kgate/g\u0430te", "other.test/kgate/gate"):
        with pytest.raises(BadOrigin):
            server.store.add_device(Ed25519Signer.generate(bad).vkey, kindergarten="K", gate="g", now_ms=0)
    first = Ed25519Signer.generate("reg.test/kgate/one")
    server.store.add_device(first.vkey, kindergarten="K", gate="g", now_ms=0)
    with pytest.raises(DuplicateDevice, match=r"already has the device reg\.test/kgate/one"):
        server.store.add_device(
            Ed25519Signer.generate("reg.test/kgate/two").vkey, kindergarten="K", gate="g", now_ms=0
        )
    assert _devices(server) == ["reg.test/kgate/one"]
    _enrolment(server).revoke("reg.test/kgate/one", reason="stolen", by="tester")
    server.store.add_device(
        Ed25519Signer.generate("reg.test/kgate/two").vkey, kindergarten="K", gate="g", now_ms=0
    )
    assert _devices(server) == ["reg.test/kgate/one", "reg.test/kgate/two"]


def test_enrol_over_loopback_and_again_is_a_noop(server: Server, tmp_path: Path) -> None:
    token = _enrolment(server).create_token("Балбөбек", "north")
    assert len(token) >= 5 + 27  # 160 bits of urlsafe base64
    state = tmp_path / "device"
    first = enrol(server.url, token, state=state, timeout=(5, 5))
    assert first.origin.startswith("reg.test/kgate/gate-")  # no ASCII in the kindergarten's name
    assert first.kindergarten == "Балбөбек" and first.register_vkey == server.cosigner.vkey
    key = load_key(state / "device.key")
    assert key.name == first.origin
    written = json.loads((state / "enrolment.json").read_text())
    assert written["origin"] == first.origin and written["register_url"] == server.url
    assert "register_vkey" in (state / "sync.toml").read_text()
    again = enrol(server.url, token, state=state, timeout=(5, 5))  # same key, used token: same identity
    assert again == first
    assert _devices(server) == [first.origin]
    # the token is consumed: another device (another key) is refused and nothing is stored
    with pytest.raises(RejectedError, match="already used"):
        enrol(server.url, token, state=tmp_path / "other", timeout=(5, 5))
    assert _devices(server) == [first.origin]


def test_assigned_origin_from_ascii_names(server: Server, tmp_path: Path) -> None:
    token = _enrolment(server).create_token("K42", "North Gate")
    assert (
        enrol(server.url, token, state=tmp_path / "d", timeout=(5, 5)).origin
        == "reg.test/kgate/k42-north-gate"
    )


def test_wrong_and_expired_tokens_are_refused(server: Server, tmp_path: Path) -> None:
    with pytest.raises(RejectedError, match="unknown enrolment token") as err:
        enrol(server.url, "kgt1-" + "A" * 27, state=tmp_path / "a", timeout=(5, 5))
    assert err.value.status == 401
    old = _enrolment(server, clock=time.time() - 7200).create_token("K", "g", expires_s=3600)
    with pytest.raises(RejectedError, match="expired") as err:
        enrol(server.url, old, state=tmp_path / "b", timeout=(5, 5))
    assert err.value.status == 403
    assert _devices(server) == []


def _post(server: Server, path: str, token: str, body: dict[str, str]) -> requests.Response:
    return requests.post(
        server.url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def test_no_proof_of_possession_is_refused_and_nothing_stored(server: Server) -> None:
    token = _enrolment(server).create_token("K", "g")
    digest = hashlib.sha256(token.encode()).hexdigest()
    ch = _post(server, "/v1/enrol/challenge", token, {}).json()
    key = Ed25519Signer.generate(ch["origin"])
    impostor = Ed25519Signer.generate(ch["origin"])  # signs, but is not the key being enrolled
    msg = proof_message(REGISTER, ch["origin"], digest, ch["challenge"], key.vkey)
    cases = [
        base64.b64encode(impostor.sign(msg)).decode(),
        base64.b64encode(key.sign(msg + b"x")).decode(),  # another message
        base64.b64encode(
            key.sign(proof_message(REGISTER, ch["origin"], "0" * 64, ch["challenge"], key.vkey))
        ).decode(),
    ]
    for sig in cases:
        r = _post(
            server, "/v1/enrol", token, {"challenge": ch["challenge"], "vkey": key.vkey, "signature": sig}
        )
        assert r.status_code == 403, r.text
        assert "possession" in r.json()["detail"]
    # a key named other than the assigned origin
    other = Ed25519Signer.generate("reg.test/kgate/chosen-by-me")
    forged = base64.b64encode(
        other.sign(proof_message(REGISTER, other.name, digest, ch["challenge"], other.vkey))
    ).decode()
    r = _post(
        server,
        "/v1/enrol",
        token,
        {"challenge": ch["challenge"], "vkey": other.vkey, "signature": forged},
    )
    assert r.status_code == 403 and "assigned" in r.json()["detail"]
    assert _devices(server) == []
    # the genuine proof still works (the refusals consumed nothing)
    good = base64.b64encode(key.sign(msg)).decode()
    r = _post(server, "/v1/enrol", token, {"challenge": ch["challenge"], "vkey": key.vkey, "signature": good})
    assert r.status_code == 200, r.text
    assert _devices(server) == [ch["origin"]]
    # a challenge is single-use
    r = _post(server, "/v1/enrol", token, {"challenge": ch["challenge"], "vkey": key.vkey, "signature": good})
    assert r.status_code == 403 and "challenge" in r.json()["detail"]


def test_missing_token_is_401_before_the_body(server: Server) -> None:
    r = requests.post(server.url + "/v1/enrol/challenge", data=b"x" * 100_000, timeout=10)
    assert r.status_code == 401
    assert r.json()["error"] == "bad_token"


def test_revoked_device_push_is_403_and_its_log_still_verifies(
    server: Server, db_url: str, tmp_path: Path
) -> None:
    token = _enrolment(server).create_token("K", "north")
    state = tmp_path / "dev"
    ident = enrol(server.url, token, state=state, timeout=(5, 5))
    dev = make_device(state, ident.origin)
    dev.append(32)
    assert server.push(dev.signer, dev.body(0, 16)).status_code == 200
    revoke = ["register", "device", "revoke", ident.origin, "--reason", "stolen gate", "--by", "director"]
    assert main([*revoke, "--db", db_url]) == 0
    r = server.push(dev.signer, dev.body(16, 32, old_size=16))
    assert r.status_code == 403, r.text
    assert server.send("GET", "/v1/state", dev.signer).status_code == 403
    (rev,) = _enrolment(server).revocations()
    assert (rev.origin, rev.revoked_by, rev.reason) == (ident.origin, "director", "stolen gate")
    report = verify_register(db_url)
    assert [(d.origin, d.size) for d in report.devices] == [(ident.origin, 16)]
    assert main([*revoke, "--db", db_url]) == 2  # already revoked: one line, no change
    dev.ledger.close()


def test_replacement_is_recorded_and_revokes_the_old_device(server: Server, tmp_path: Path) -> None:
    e = _enrolment(server)
    old = enrol(server.url, e.create_token("K", "north"), state=tmp_path / "old", timeout=(5, 5))
    with pytest.raises(RejectedError, match="already has the device"):  # a second device needs --replaces
        enrol(server.url, e.create_token("K", "north"), state=tmp_path / "x", timeout=(5, 5))
    new = enrol(
        server.url, e.create_token("K", "north", replaces=old.origin), state=tmp_path / "new", timeout=(5, 5)
    )
    assert new.replaced == old.origin and new.origin == old.origin + "-2"
    (rev,) = e.revocations()
    assert (rev.origin, rev.replaced_by) == (old.origin, new.origin)
    assert [(d.origin, d.disabled) for d in server.store.devices()] == [
        (old.origin, True),
        (new.origin, False),
    ]


def test_cli_token_create_and_bad_device_add(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "r.db")
    common = ["--db", db, "--name", "reg.test"]
    assert main(["register", "init", "--db", db]) == 0  # only init and serve create a database
    capsys.readouterr()
    assert (
        main(
            ["register", "token", "create", "--kindergarten", "K", "--gate", "g", "--expires", "2h", *common]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith("kgt1-")
    vkey = Ed25519Signer.generate("reg.test/kgate/g\u0430te").vkey
    assert main(["register", "device", "add", vkey, "--kindergarten", "K", "--gate", "g", *common]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kgate: error: origin") and "non-ASCII" in err and err.count("\n") == 1
    assert (
        main(
            ["register", "token", "create", "--kindergarten", "K", "--gate", "g", "--expires", "1y", *common]
        )
        == 2
    )
    assert "--expires" in capsys.readouterr().err


def test_cli_enrol_reads_the_token_from_a_file_or_stdin(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--token-file FILE`` and ``--token -`` keep the token out of ps and history; ``--token T`` works."""
    e = _enrolment(server)
    common = ["enrol", "--register", server.url, "--timeout", "5", "--json"]
    file_token, stdin_token, argv_token = (e.create_token("K", gate) for gate in ("g1", "g2", "g3"))
    (tmp_path / "token").write_text(f"\n  {file_token}  \n\n")  # blank lines and spaces around it
    assert main([*common, "--state", str(tmp_path / "a"), "--token-file", str(tmp_path / "token")]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin_token + "\n"))
    assert main([*common, "--state", str(tmp_path / "b"), "--token", "-"]) == 0
    assert main([*common, "--state", str(tmp_path / "c"), "--token", argv_token]) == 0
    gates = [json.loads(line)["gate"] for line in capsys.readouterr().out.splitlines()]
    assert gates == ["g1", "g2", "g3"]
    assert len(_devices(server)) == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read --token-file"),
        ("", "no enrolment token in --token-file"),
        ("\n \n", "no enrolment token in --token-file"),
        ("kgt1-AAAA\nkgt1-BBBB\n", "expected the token alone on one line, found 2 lines"),
        ("kgt1-" + "A" * 5000, "is larger than 4 KiB"),
    ],
)
def test_cli_enrol_refuses_a_bad_token_file_in_one_line(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    argv = ["enrol", "--register", server.url, "--state", str(tmp_path / "s"), "--token-file", str(path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "AAAA" not in err  # the token is never echoed
    assert not (tmp_path / "s").exists() and _devices(server) == []


def test_cli_enrol_takes_the_token_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "token").write_text("kgt1-" + "A" * 27)
    both = ["--token", "kgt1-" + "B" * 27, "--token-file", str(tmp_path / "token")]
    with pytest.raises(SystemExit) as exit_:
        main(["enrol", "--register", "http://127.0.0.1:1", *both])
    assert exit_.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["enrol", "--register", "http://127.0.0.1:1"])
    assert (
        exit_.value.code == 2
        and "one of the arguments --token --token-file is required" in capsys.readouterr().err
    )


def test_an_unknown_token_is_refused_before_the_body_is_read(make_server: Callable[..., Server]) -> None:
    """A stranger's request is answered 401 at once: the register does not wait for (or read) its body.
    Had it read first, this body that never comes would hold the request until the body deadline."""
    server = make_server(Limits(body_timeout=60.0))
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            b"POST /v1/enrol/challenge HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer kgt1-" + b"A" * 27 + b"\r\nContent-Length: 4000\r\n\r\n{"
        )
        start = time.monotonic()
        head = b""
        while chunk := conn.recv(4096):  # socket timeout 10 s: far below the 60 s body deadline
            head += chunk
    assert head.startswith(b"HTTP/1.1 401 "), head[:200]
    assert b"bad_token" in head and time.monotonic() - start < 10


def _challenges(server: Server) -> int:
    with server.store._tx(write=False) as sql:
        return int(sql.one("SELECT COUNT(*) FROM enrol_challenges")[0])


def test_a_used_token_gets_no_new_challenge(server: Server, tmp_path: Path) -> None:
    """Only the key the token enrolled may ask again (a device whose answer was lost retries)."""
    token = _enrolment(server).create_token("K", "north")
    first = enrol(server.url, token, state=tmp_path / "dev", timeout=(5, 5))
    before = _challenges(server)
    for vkey in (None, Ed25519Signer.generate("reg.test/kgate/k-north-2").vkey):
        r = _post(server, "/v1/enrol/challenge", token, {"vkey": vkey} if vkey else {})
        assert r.status_code == 403 and "already used" in r.json()["detail"], r.text
    assert _challenges(server) == before  # nothing stored for a refused request
    other = enrol(
        server.url, _enrolment(server).create_token("K", "south"), state=tmp_path / "o", timeout=(5, 5)
    )
    r = _post(server, "/v1/enrol/challenge", token, {"vkey": load_key(tmp_path / "o" / "device.key").vkey})
    assert r.status_code == 403 and "already used" in r.json()["detail"], r.text  # a key of another token
    assert _challenges(server) == before
    own = _post(
        server, "/v1/enrol/challenge", token, {"vkey": load_key(tmp_path / "dev" / "device.key").vkey}
    )
    assert own.status_code == 200 and own.json()["origin"] == first.origin
    assert _devices(server) == [first.origin, other.origin]


def test_device_list_marks_revoked_devices_in_plain_text(
    server: Server, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    e = _enrolment(server)
    kept = enrol(server.url, e.create_token("K", "north"), state=tmp_path / "a", timeout=(5, 5))
    gone = enrol(server.url, e.create_token("K", "south"), state=tmp_path / "b", timeout=(5, 5))
    e.revoke(gone.origin, reason="stolen", by="director")
    assert main(["register", "device", "list", "--db", db_url]) == 0
    rows = {line.split("\t")[0]: line.split("\t")[1:4] for line in capsys.readouterr().out.splitlines()}
    assert rows == {kept.origin: ["live", "K", "north"], gone.origin: ["REVOKED", "K", "south"]}


def test_cli_revoke_by_key_names_the_registers_device_and_refuses_in_one_line(
    server: Server, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    e = _enrolment(server)
    ident = enrol(server.url, e.create_token("K", "north"), state=tmp_path / "a", timeout=(5, 5))
    vkey = load_key(tmp_path / "a" / "device.key").vkey
    revoke = ["register", "device", "revoke", "--reason", "decommissioned", "--db", db_url]
    stranger = Ed25519Signer.generate(ident.origin).vkey  # the same name, another key
    for argv, message in (
        ([*revoke, "--key", stranger], "no enrolled device has the key"),
        ([*revoke, "--key", "not-a-key"], "--key: not an Ed25519 note verifier key"),
        ([*revoke, ident.origin, "--key", vkey], "not both"),
        (revoke, "give the device's ORIGIN or --key VKEY"),
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert [d.disabled for d in server.store.devices()] == [False]
    assert main([*revoke, "--key", vkey]) == 0
    assert capsys.readouterr().out.startswith(f"revoked {ident.origin}:")
    assert [d.disabled for d in server.store.devices()] == [True]
