"""``kgate register pull`` against a real ``kgate sync serve``: verified and ingested exactly like a push.

Unsigned, badly signed and replayed requests to the pull server are refused in tests/sync/test_pull.py
(the server side); here the register's side: its request key from ``--state`` is accepted, another
register's key is refused, pulls are incremental and idempotent, a push continues where a pull
stopped, and a forked log met by a pull is a 409-style equivocation with an alarm, the original kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ledger.note import CosignatureVerifier, Ed25519Signer, open_note
from ledger.store import open_reader
from register.errors import Equivocation
from register.keys import load_or_create_keys
from register.pull import pull_device
from register.service import Register
from register.store import open_store
from sync_agent.pull import PullServer, PullService
from tests.conftest import free_port
from tests.e2e.conftest import (
    ORIGIN,
    REGISTER_NAME,
    ThreadedRegister,
    append_entries,
    assert_exactly,
    copy_ledger,
    device_entries,
    device_vkey,
    enrol,
    kgate,
    new_ledger,
    spawn,
    stop,
    stored_log,
    wait_http,
)


def _pull(url: str, work: Path, *extra: str) -> tuple[int, dict[str, object], str]:
    out = kgate(
        "register", "pull", url, "--db", str(work / "register.db"), "--state", str(work / "register-state"),
        "--device", ORIGIN, "--timeout", "30", "--json", *extra,
    )  # fmt: skip
    return out.returncode, json.loads(out.stdout) if out.returncode == 0 else {}, out.stderr


@pytest.mark.slow
@pytest.mark.timeout(600)  # 47 s seen beside two CPU hogs and other work
def test_register_pull_from_sync_serve_ingests_like_a_push(
    work: Path, make_register: Callable[..., ThreadedRegister]
) -> None:
    ledger = new_ledger(work / "device", 700)
    keys = json.loads(
        kgate(
            "register", "keys", "--state", str(work / "register-state"), "--name", REGISTER_NAME, "--json"
        ).stdout
    )
    assert kgate("register", "init", "--db", str(work / "register.db")).returncode == 0  # init creates it
    added = kgate(
        "register", "device", "add", device_vkey(ledger), "--kindergarten", "K-1", "--gate", "north",
        "--db", str(work / "register.db"), "--name", REGISTER_NAME,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    port = free_port()
    serve = spawn(
        "sync", "serve", "--ledger", str(ledger), "--listen", f"127.0.0.1:{port}", "--prefix", "log",
        "--register-request-vkey", keys["request_vkey"], log=work / "serve.log",
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/log"
    try:
        wait_http(url + "/checkpoint", proc=serve)
        code, first, err = _pull(url, work)
        assert code == 0, err
        assert (first["start"], first["fetched"], first["size"]) == (0, 700, 700)
        assert_exactly(work / "register.db", device_entries(ledger))
        opened = open_note(str(first["cosigned"]), [CosignatureVerifier.from_vkey(keys["cosigner_vkey"])])
        with open_reader(ledger) as r:
            assert str(first["cosigned"]).startswith(r.checkpoint()) and opened.verified

        append_entries(ledger, 300, start_ms=1_700_000_500_000)  # the gate keeps working meanwhile
        code, second, err = _pull(url, work)
        assert code == 0, err
        assert (second["start"], second["fetched"], second["size"]) == (700, 300, 1000)
        code, third, err = _pull(url, work)
        assert code == 0 and (third["fetched"], third["size"]) == (0, 1000), err
        assert_exactly(work / "register.db", device_entries(ledger))

        code, _, err = _pull(url, work, "--state", str(work / "other-register"), "--name", "other.reg")
        assert code == 3 and "refused our request signature" in err  # not the key the gate knows
    finally:
        stop(serve)

    append_entries(ledger, 20, start_ms=1_700_000_900_000)
    reg = make_register()  # same database and keys: a push continues where the pull stopped
    pushed = kgate(
        "sync", "once", "--ledger", str(ledger), "--state", str(work / "sync"), "--register", reg.url,
        "--key", str(ledger.with_name("device.key")), "--register-vkey", keys["cosigner_vkey"], "--json",
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["delivered"] == 20
    assert_exactly(work / "register.db", device_entries(ledger))
    verified = kgate("verify", str(work / "register.db"))
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.fixture
def serve_ledger() -> Iterator[Callable[[Path, Ed25519Signer], str]]:
    """Serve ledgers with PullServer in threads; returns their URLs."""
    servers: list[PullServer] = []
    readers = []

    def start(ledger: Path, register_key: Ed25519Signer) -> str:
        reader = open_reader(ledger)
        server = PullServer(PullService(reader, [register_key.verifier()]), "127.0.0.1", 0)
        server.start()
        servers.append(server)
        readers.append(reader)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.stop()
    for reader in readers:
        reader.close()


def test_pulling_a_forked_log_is_equivocation_alarm_original_kept(
    work: Path, serve_ledger: Callable[[Path, Ed25519Signer], str]
) -> None:
    original = new_ledger(work / "original", 300)
    fork = copy_ledger(original, work / "fork")  # same key and origin
    append_entries(original, 40, start_ms=1_700_000_100_000, child="A")
    append_entries(fork, 40, start_ms=1_700_000_200_000, child="B")
    db = str(work / "register.db")
    enrol(db, original)
    keys = load_or_create_keys(work / "register-state", REGISTER_NAME)
    with open_store(db) as store:
        register = Register(store, keys.cosigner, max_batch=1 << 20)
        device = store.device_by_origin(ORIGIN)
        assert device is not None
        done = pull_device(register, device, serve_ledger(original, keys.request), keys.request, timeout=30)
        assert (done.fetched, done.size) == (340, 340)
        fork_url = serve_ledger(fork, keys.request)
        device = store.device_by_origin(ORIGIN)
        assert device is not None
        with pytest.raises(Equivocation) as caught:
            pull_device(register, device, fork_url, keys.request, timeout=30)
        assert caught.value.status == 409 and caught.value.index is None  # fork's root at 340 differs
    code, _, err = _pull(fork_url, work)
    assert code == 4 and "EQUIVOCATION" in err
    log = stored_log(work / "register.db")
    assert log.entries == device_entries(original)  # nothing overwritten
    assert [kind for kind, _, _ in log.alarms] == ["equivocation", "equivocation"]
    evidence = json.loads(log.alarms[0][2] or b"{}")
    with open_reader(fork) as r:
        assert evidence["checkpoint"] == r.checkpoint() and evidence["pulled_from"] == fork_url
