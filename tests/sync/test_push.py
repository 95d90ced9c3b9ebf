"""The push loop over real HTTP on loopback, against a register that follows the protocol draft."""

from __future__ import annotations

import json
import random
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from kgate.cli import main
from ledger.checkpoint import Checkpoint
from ledger.note import CosignatureSigner, open_note
from ledger.store import open_reader
from sync_agent.agent import Backoff, SyncAgent, batch_end, run_forever
from sync_agent.errors import (
    BadResponseError,
    EquivocationError,
    HaltedError,
    RateLimited,
    ServerError,
    TransportError,
)
from sync_agent.state import SyncState
from tests.sync.conftest import TEMPLATE_SIZE, append_entries
from tests.sync.fake_register import FakeRegister

Make = Callable[..., SyncAgent]


def device_entries(path: Path) -> list[bytes]:
    with open_reader(path) as r:
        return r.entries(0, r.size)


def test_batch_ends_fall_on_retained_checkpoints() -> None:
    assert batch_end(0, 1100, 256) == 256
    assert batch_end(1090, 1100, 256) == 1100
    assert batch_end(5, 1100, 100) == 96  # a multiple of 16, past the start
    assert batch_end(1050, 1100, 16) == 1056


def test_backlog_is_delivered_in_batches_and_cosignature_stored(
    register: FakeRegister, make_agent: Make, ledger_path: Path, cosigner: CosignatureSigner
) -> None:
    agent = make_agent(register.url, batch_size=256)
    result = agent.sync_once()
    assert result.cosigned_size == TEMPLATE_SIZE and result.delivered == TEMPLATE_SIZE
    assert result.batches == 5  # 256 ×4 then 76
    assert register.log().entries == device_entries(ledger_path)
    snap = agent.state.read()
    assert snap.cosigned_size == TEMPLATE_SIZE and snap.last_error is None
    opened = open_note(snap.cosigned_note or "", [cosigner.verifier()])
    assert Checkpoint.parse(opened.text).size == TEMPLATE_SIZE
    pushes = [r for r in register.requests if r[1] == "/v1/push"]
    assert len(pushes) == 5 and all(status == 200 for _, _, status in pushes)
    assert register.log().heartbeats[0]["pending"] == TEMPLATE_SIZE
    # nothing pending: a second round sends nothing but a (due) heartbeat
    again = agent.sync_once()
    assert again.batches == 0 and again.heartbeat_sent is False


def test_new_entries_are_pushed_from_the_cosigned_size(
    register: FakeRegister, make_agent: Make, ledger_path: Path
) -> None:
    agent = make_agent(register.url)
    agent.sync_once()
    append_entries(ledger_path, 7)
    result = agent.sync_once()
    assert (result.delivered, result.cosigned_size) == (7, TEMPLATE_SIZE + 7)
    assert register.log().entries == device_entries(ledger_path)


def test_response_lost_after_commit_is_resent_harmlessly(
    register: FakeRegister, make_agent: Make, ledger_path: Path
) -> None:
    agent = make_agent(register.url, batch_size=512)
    register.faults = ["", "drop"]  # state GET, then the first push commits but the answer is lost
    with pytest.raises(TransportError):
        agent.sync_once()
    assert len(register.log().entries) == 512  # committed on the register
    assert agent.state.read().cosigned_size == 0  # ... but not acknowledged to us
    assert agent.state.read().last_error
    agent.sync_once()  # re-sends [0, 512): a no-op for the register
    assert register.log().entries == device_entries(ledger_path)
    assert agent.state.read().cosigned_size == TEMPLATE_SIZE


def test_a_cosigned_size_below_the_batch_sent_is_refused(
    register: FakeRegister, make_agent: Make, ledger_path: Path
) -> None:
    agent = make_agent(register.url, batch_size=256)
    register.faults = ["", "", "stale-ack"]  # state GET, push [0, 256), push [256, 512) answered with 256
    with pytest.raises(BadResponseError, match="cosigned size 256"):
        agent.sync_once()
    snap = agent.state.read()
    assert snap.cosigned_size == 256 and snap.last_error and "256" in snap.last_error
    assert [status for _, path, status in register.requests if path == "/v1/push"] == [200, 200]


def test_truncated_answer_is_retryable(register: FakeRegister, make_agent: Make, ledger_path: Path) -> None:
    agent = make_agent(register.url)
    register.faults = ["", "reset-body"]
    with pytest.raises(TransportError):
        agent.sync_once()
    agent.sync_once()
    assert register.log().entries == device_entries(ledger_path)


def test_lost_state_resumes_from_the_register(
    register: FakeRegister, make_agent: Make, tmp_path: Path, ledger_path: Path
) -> None:
    make_agent(register.url, state_dir=tmp_path / "s1").sync_once()
    fresh = make_agent(register.url, state_dir=tmp_path / "s2")  # state dir wiped (or never written)
    result = fresh.sync_once()
    assert result.delivered == 0 and result.cosigned_size == TEMPLATE_SIZE
    assert [r[1] for r in register.requests[-1:]] == ["/v1/state"]


def test_dead_network_is_retryable_and_recorded(make_agent: Make) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    agent = make_agent(f"http://127.0.0.1:{port}")
    for _ in range(2):
        with pytest.raises(TransportError) as info:
            agent.sync_once()
        assert isinstance(info.value, ConnectionError)
    snap = agent.state.read()
    assert snap.failures == 2 and "refused" in (snap.last_error or "").lower()
    assert snap.halted is None


def test_backoff_grows_with_full_jitter() -> None:
    backoff = Backoff(1.0, 60.0, random.Random(7))
    for failures in range(1, 10):
        ceiling = min(60.0, 2 ** (failures - 1))
        samples = [backoff.delay(failures) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > 0.8 * ceiling and len(set(samples)) > 150  # spread over the range
    assert backoff.delay(1, retry_after=30.0) >= 30.0
    assert backoff.delay(1, retry_after=1e6) == 60.0


def test_5xx_burst_then_success(register: FakeRegister, make_agent: Make, ledger_path: Path) -> None:
    agent = make_agent(register.url)
    register.faults = ["503", "503", "503"]
    stop = threading.Event()
    agent.on_batch = lambda: stop.set() if agent.state.read().cosigned_size == TEMPLATE_SIZE else None
    code = run_forever(agent, Backoff(0.01, 0.05), stop, poll_interval=0.05)
    assert code == 0
    snap = agent.state.read()
    assert snap.cosigned_size == TEMPLATE_SIZE and snap.halted is None
    assert register.log().entries == device_entries(ledger_path)
    assert [s for _, _, s in register.requests[:3]] == [503, 503, 503]


@pytest.mark.parametrize("fault", ["503", "commit-503"])
def test_a_5xx_on_the_push_records_no_acknowledgement(
    fault: str, register: FakeRegister, make_agent: Make, ledger_path: Path
) -> None:
    """A 5xx answer to the push itself is a failure, even with a cosigned checkpoint in its body."""
    agent = make_agent(register.url, batch_size=512)
    register.faults = ["", fault]  # GET /v1/state answered; the first push gets the 503
    with pytest.raises(ServerError, match=r"POST /v1/push: HTTP 503"):
        agent.sync_once()
    snap = agent.state.read()
    assert snap.cosigned_size == 0 and snap.cosigned_note is None  # nothing acknowledged
    assert snap.last_error and "HTTP 503" in snap.last_error and snap.failures == 1 and snap.halted is None
    assert [(path, status) for _, path, status in register.requests] == [
        ("/v1/state", 200),
        ("/v1/push", 503),
    ]
    assert len(register.log().entries) == (512 if fault == "commit-503" else 0)
    agent.sync_once()  # the same batch again, from the acknowledged 0: harmless if it was committed
    assert register.log().entries == device_entries(ledger_path)
    assert agent.state.read().cosigned_size == TEMPLATE_SIZE
    assert [status for _, path, status in register.requests if path == "/v1/push"] == [503, 200, 200, 200]


def test_429_carries_retry_after(register: FakeRegister, make_agent: Make) -> None:
    agent = make_agent(register.url)
    register.faults = ["429"]
    with pytest.raises(RateLimited) as info:
        agent.sync_once()
    assert info.value.retry_after == 0.0


def test_gap_triggers_resync(
    register: FakeRegister, make_agent: Make, ledger_path: Path, cosigner: CosignatureSigner
) -> None:
    agent = make_agent(register.url)
    agent.sync_once()
    # the register loses everything (restored from an old backup): our state says 1100, it has 0
    fresh = FakeRegister(cosigner, [agent.reader.vkey])
    try:
        agent.client.base_url = fresh.url
        append_entries(ledger_path, 3)
        result = agent.sync_once()
        assert result.cosigned_size == TEMPLATE_SIZE + 3
        statuses = [(p, s) for _, p, s in fresh.requests]
        assert statuses[0] == ("/v1/push", 409) and statuses[1] == ("/v1/state", 200)
        assert fresh.log().entries == device_entries(ledger_path)
    finally:
        fresh.stop()


def test_equivocation_halts_until_cleared(register: FakeRegister, make_agent: Make, tmp_path: Path) -> None:
    agent = make_agent(register.url)
    register.equivocate = True
    with pytest.raises(EquivocationError):
        agent.sync_once()
    n = len(register.requests)
    with pytest.raises(HaltedError):
        agent.sync_once()
    assert len(register.requests) == n  # halted: nothing sent, no retry loop
    assert "EQUIVOCATION" in (agent.state.read().halted or "")
    assert main(["sync", "clear-alarm", "--state", str(tmp_path / "state")]) == 0
    register.equivocate = False
    assert agent.sync_once().cosigned_size == TEMPLATE_SIZE


def test_wrong_cosigner_key_is_fatal(register: FakeRegister, make_agent: Make, ledger_path: Path) -> None:
    register.cosigner = CosignatureSigner.generate("reg.test")  # not the pinned key
    agent = make_agent(register.url)
    with pytest.raises(BadResponseError, match="does not verify"):
        agent.sync_once()
    snap = agent.state.read()
    assert snap.cosigned_size == 0 and snap.halted  # the empty register's state, then halted


def test_cli_once_and_status_json(
    register: FakeRegister,
    ledger_path: Path,
    tmp_path: Path,
    cosigner: CosignatureSigner,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = tmp_path / "cli-state"
    argv = [
        "sync", "once", "--ledger", str(ledger_path), "--state", str(state), "--register", register.url,
        "--key", str(ledger_path.with_name("device.key")), "--register-vkey", cosigner.verifier().vkey,
        "--batch-size", "512", "--json",
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(out)["cosigned_size"] == TEMPLATE_SIZE
    append_entries(ledger_path, 5)
    assert main(["sync", "status", "--state", str(state), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status == {
        "size": TEMPLATE_SIZE + 5,
        "cosigned_size": TEMPLATE_SIZE,
        "pending": 5,
        "last_error": None,
    }
    assert main(["sync", "status", "--state", str(state)]) == 0
    assert "5 pending" in capsys.readouterr().out


def test_cli_once_retry_later_exit_code(
    ledger_path: Path, tmp_path: Path, cosigner: CosignatureSigner
) -> None:
    argv = [
        "sync", "once", "--ledger", str(ledger_path), "--state", str(tmp_path / "s"),
        "--register", "http://127.0.0.1:9", "--key", str(ledger_path.with_name("device.key")),
        "--register-vkey", cosigner.verifier().vkey,
    ]  # fmt: skip
    assert main(argv) == 75
    with SyncState(tmp_path / "s", readonly=True) as st:
        assert st.read().last_error


def test_cli_refuses_plain_http_off_loopback(
    ledger_path: Path, tmp_path: Path, cosigner: CosignatureSigner
) -> None:
    argv = [
        "sync", "once", "--ledger", str(ledger_path), "--state", str(tmp_path / "s"),
        "--register", "http://register.example.kz", "--key", str(ledger_path.with_name("device.key")),
        "--register-vkey", cosigner.verifier().vkey,
    ]  # fmt: skip
    assert main(argv) == 2


def test_server_error_type() -> None:
    assert issubclass(ServerError, Exception)
