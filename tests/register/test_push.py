"""The register over real HTTP on loopback, against SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.checkpoint import open_checkpoint
from ledger.note import Ed25519Signer, open_note
from register.limits import Limits
from tests.register.conftest import Device, Server, make_device


def _entry_count(server: Server, device_id: int) -> int:
    return sum(1 for _ in server.store.iter_entries(device_id))


def test_push_stores_entries_and_answers_with_cosignature(server: Server, enrolled: Device) -> None:
    enrolled.append(40)
    for start, end in ((0, 16), (16, 32), (32, 40)):
        r = server.push(
            enrolled.signer, enrolled.body(start, end, heartbeat={"free_disk_bytes": 5, "camera_ok": True})
        )
        assert r.status_code == 200, r.text
        assert r.json()["size"] == end
        cosigned = r.json()["cosigned"]
        assert cosigned.startswith(enrolled.ledger.checkpoint_at(end) or "")
        opened = open_note(cosigned, [server.cosigner.verifier()])
        assert [s.name for s in opened.verified] == ["reg.test"]
        cp, _ = open_checkpoint(cosigned, [enrolled.ledger.verifier()])
        assert cp.size == end
    dev = server.store.device_by_origin(enrolled.ledger.origin)
    assert dev is not None and dev.size == 40 and dev.heartbeat == {"free_disk_bytes": 5, "camera_ok": True}
    stored = [data for _, _, data in server.store.iter_entries(dev.id)]
    assert stored == enrolled.ledger.entries(0, 40)
    state = server.send("GET", "/v1/state", enrolled.signer)
    assert state.status_code == 200, state.text
    assert state.json()["size"] == 40 and state.json()["cosigned"].startswith(enrolled.ledger.checkpoint())


def test_gzip_body_and_heartbeat(server: Server, enrolled: Device) -> None:
    enrolled.append(16)
    r = server.push(enrolled.signer, enrolled.body(0, 16), gzipped=True)
    assert r.status_code == 200, r.text
    hb = {"origin": enrolled.ledger.origin, "heartbeat": {"uptime_s": 12.5, "roster_version": 3}}
    r = server.send("POST", "/v1/heartbeat", enrolled.signer, hb)
    assert r.status_code == 200, r.text
    dev = server.store.device_by_origin(enrolled.ledger.origin)
    assert dev is not None and dev.heartbeat == {"uptime_s": 12.5, "roster_version": 3} and dev.last_seen_ms


def test_resend_is_a_noop(server: Server, enrolled: Device) -> None:
    enrolled.append(32)
    first = server.push(enrolled.signer, enrolled.body(0, 16))
    assert first.status_code == 200
    again = server.push(enrolled.signer, enrolled.body(0, 16))
    assert again.status_code == 200 and again.json() == first.json()
    assert server.push(enrolled.signer, enrolled.body(0, 32, old_size=16)).status_code == 200
    overlap = server.push(enrolled.signer, enrolled.body(16, 32, old_size=16))
    assert overlap.status_code == 200 and overlap.json()["size"] == 32
    dev = server.store.device_by_origin(enrolled.ledger.origin)
    assert dev is not None and _entry_count(server, dev.id) == 32
    assert server.store.alarms() == []


def test_concurrent_pushes_of_one_device_serialise(server: Server, enrolled: Device) -> None:
    enrolled.append(32)
    bodies = [enrolled.body(0, 16), enrolled.body(0, 32), enrolled.body(0, 16), enrolled.body(0, 32)]
    codes: list[int] = []

    def go(body: dict[str, object]) -> None:
        codes.append(server.push(enrolled.signer, body).status_code)

    threads = [threading.Thread(target=go, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes.count(200) + codes.count(409) == 4 and codes.count(200) >= 2
    dev = server.store.device_by_origin(enrolled.ledger.origin)
    assert dev is not None and dev.size == 32 and _entry_count(server, dev.id) == 32


def _fork(device: Device, tmp_path: Path) -> Device:
    """A second ledger under the same device key: the device lying about its history."""
    return make_device(tmp_path / "fork", device.ledger.origin, key_path=tmp_path / "dev1" / "device.key")


def test_equivocation_same_index_different_bytes(server: Server, enrolled: Device, tmp_path: Path) -> None:
    enrolled.append(16)
    fork = _fork(enrolled, tmp_path)
    fork.clock.advance(7)
    fork.append(16)
    assert server.push(enrolled.signer, enrolled.body(0, 16)).status_code == 200
    r = server.push(enrolled.signer, fork.body(0, 16))
    assert r.status_code == 409 and r.json()["error"] == "equivocation" and r.json()["index"] == 0
    alarms = server.store.alarms()
    assert len(alarms) == 1 and alarms[0].kind == "equivocation" and alarms[0].index == 0
    assert alarms[0].evidence is not None
    assert json.loads(alarms[0].evidence)["checkpoint"] == fork.ledger.checkpoint()
    dev = server.store.device_by_origin(enrolled.ledger.origin)
    assert dev is not None
    assert [d for _, _, d in server.store.iter_entries(dev.id)] == enrolled.ledger.entries(0, 16)
    fork.ledger.close()


def test_batch_that_overlaps_and_extends_the_stored_log_is_compared(
    server: Server, enrolled: Device, tmp_path: Path
) -> None:
    """A forked batch that starts inside the stored log and runs past it: the overlap is compared too."""
    enrolled.append(16)
    fork = _fork(enrolled, tmp_path)
    fork.clock.advance(7)
    fork.append(32)
    assert server.push(enrolled.signer, enrolled.body(0, 16)).status_code == 200
    r = server.push(enrolled.signer, fork.body(8, 32, old_size=0))
    assert r.status_code == 409 and r.json()["error"] == "equivocation" and r.json()["index"] == 8, r.text
    alarms = server.store.alarms()
    assert len(alarms) == 1 and alarms[0].kind == "equivocation" and alarms[0].index == 8
    dev = server.store.device_by_origin(enrolled.ledger.origin)
    assert dev is not None and dev.size == 16
    fork.ledger.close()


def test_inconsistent_checkpoint_is_equivocation(server: Server, enrolled: Device, tmp_path: Path) -> None:
    enrolled.append(16)
    fork = _fork(enrolled, tmp_path)
    fork.clock.advance(7)
    fork.append(32)
    assert server.push(enrolled.signer, enrolled.body(0, 16)).status_code == 200
    r = server.push(enrolled.signer, fork.body(16, 32, old_size=16))
    assert r.status_code == 409 and r.json()["error"] == "equivocation", r.text
    assert len(server.store.alarms()) == 1
    dev = server.store.device_by_origin(enrolled.ledger.origin)
    assert dev is not None and dev.size == 16
    state = server.send("GET", "/v1/state", enrolled.signer).json()
    assert state["cosigned"].startswith(enrolled.ledger.checkpoint_at(16) or "")
    fork.ledger.close()


def test_gap_is_409_with_stored_size(server: Server, enrolled: Device) -> None:
    enrolled.append(32)
    r = server.push(enrolled.signer, enrolled.body(16, 32, old_size=0))
    assert r.status_code == 409 and r.json() == {"error": "gap", "detail": r.json()["detail"], "size": 0}


def test_unverifiable_batches_are_422(server: Server, enrolled: Device) -> None:
    enrolled.append(16)
    body = enrolled.body(0, 16)
    body["entries"][3] = body["entries"][4]  # wrong index inside the entry
    r = server.push(enrolled.signer, body)
    assert r.status_code == 422 and "entry 3" in r.json()["detail"]
    body = enrolled.body(0, 16)
    body["checkpoint"] = body["checkpoint"].replace("\n\n", "\nx\n\n", 1)  # breaks the device signature
    assert server.push(enrolled.signer, body).status_code == 422


def test_signatures_missing_bad_replayed_expired_are_401(server: Server, enrolled: Device) -> None:
    enrolled.append(16)
    body = enrolled.body(0, 16)
    assert server.push(None, body).status_code == 401
    expired = server.push(enrolled.signer, body, now=int(time.time()) - 1000)
    assert expired.status_code == 401 and "ago" in expired.json()["detail"]
    impostor = Ed25519Signer.generate(enrolled.ledger.origin)  # same name, other key: unknown keyid
    assert server.push(impostor, body).status_code == 403
    # A valid signature on one body replayed with another body.
    data = json.dumps(body).encode()
    tampered = json.dumps({**body, "start": 1}).encode()
    from ledger.httpsig import sign_request

    hdrs = sign_request("POST", server.url + "/v1/push", {}, data, enrolled.signer, now=int(time.time()))
    hdrs["Content-Type"] = "application/json"
    r = server.session.post(server.url + "/v1/push", data=tampered, headers=hdrs, timeout=10)
    assert r.status_code == 401 and "Content-Digest" in r.json()["detail"]
    first = server.session.post(server.url + "/v1/push", data=data, headers=hdrs, timeout=10)
    assert first.status_code == 200
    replay = server.session.post(server.url + "/v1/push", data=data, headers=hdrs, timeout=10)
    assert replay.status_code == 401 and "replay" in replay.json()["detail"]


def test_unknown_device_403_and_foreign_origin_403(server: Server, enrolled: Device, tmp_path: Path) -> None:
    other = make_device(tmp_path / "dev2", "reg.test/kgate/dev2")
    other.append(16)
    assert server.push(other.signer, other.body(0, 16)).status_code == 403
    r = server.push(enrolled.signer, other.body(0, 16))  # enrolled key, another device's log
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    other.ledger.close()


def test_too_large_bodies_and_batches_are_413(make_server: Callable[..., Server], device: Device) -> None:
    server = make_server(Limits(max_body=64 << 10, max_decoded=256 << 10, max_batch=8))
    server.store.add_device(device.ledger.vkey, kindergarten="K1", gate="g", now_ms=0)
    device.append(16)
    assert server.push(device.signer, device.body(0, 16)).status_code == 413  # batch of 16 > 8
    huge = {"origin": device.ledger.origin, "pad": "x" * (100 << 10)}
    assert server.push(device.signer, huge).status_code == 413
    bomb = gzip.compress(b"{" + b" " * (10 << 20) + b"}")
    r = server.send("POST", "/v1/push", device.signer, raw=bomb, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413, r.text


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[]",
        b'{"origin": 5}',
        b'{"origin": "reg.test/kgate/dev1", "start": -1, "entries": [], "checkpoint": "x", "old_size": 0}',
        b'{"origin": "reg.test/kgate/dev1", "start": 1e400, "entries": [], "checkpoint": "x", "old_size": 0}',
        b'{"origin": "reg.test/kgate/dev1", "start": 99999999999999999999999999, "entries": [],'
        b' "checkpoint": "x", "old_size": 0}',
        b'{"origin": "reg.test/kgate/dev1", "start": 0, "entries": ["!!notbase64"], "checkpoint": "x",'
        b' "old_size": 0}',
        b'{"origin": "reg.test/kgate/dev1", "start": 0, "entries": "abc", "checkpoint": "x", "old_size": 0}',
        b"[" * 100000,
        "\u00ff".encode("latin-1"),
    ],
)
def test_malformed_bodies_are_400(server: Server, enrolled: Device, raw: bytes) -> None:
    r = server.send("POST", "/v1/push", enrolled.signer, raw=raw)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "malformed"


def test_garbage_checkpoint_is_4xx(server: Server, enrolled: Device) -> None:
    body = {"origin": enrolled.ledger.origin, "start": 0, "entries": [], "checkpoint": "x", "old_size": 0}
    r = server.push(enrolled.signer, body)
    assert r.status_code == 422, r.text


def test_rate_limit_is_429_with_retry_after(make_server: Callable[..., Server], device: Device) -> None:
    server = make_server(Limits(rate=0.5, burst=3))
    server.store.add_device(device.ledger.vkey, kindergarten="K1", gate="g", now_ms=0)
    codes = [server.send("GET", "/v1/state", device.signer) for _ in range(5)]
    assert [r.status_code for r in codes[:3]] == [200, 200, 200]
    assert codes[3].status_code == 429 and int(codes[3].headers["Retry-After"]) >= 1


def test_openapi_describes_the_bodies(server: Server) -> None:
    spec = server.session.get(server.url + "/openapi.json", timeout=10).json()
    push = spec["paths"]["/v1/push"]["post"]
    assert push["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/PushRequest")
    assert {"200", "401", "409", "413", "429"} <= set(push["responses"])
    assert set(spec["components"]["schemas"]["PushRequest"]["properties"]) >= {
        "origin", "start", "entries", "checkpoint", "old_size", "proof", "heartbeat",
    }  # fmt: skip
    assert server.session.get(server.url + "/nope", timeout=10).json()["error"] == "not_found"


def test_base64_helper_roundtrip() -> None:
    assert base64.b64decode(base64.b64encode(b"x")) == b"x"
