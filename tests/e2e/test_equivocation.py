"""Equivocation end to end: a cloned gate (same key and origin, other entries) pushes to the REAL register.

Two ledgers share their first 16 entries (an SD card cloned after a sync) and then diverge. The
original delivers first; the clone's ``kgate sync once`` gets 409, the register records an alarm with
the clone's request as evidence and keeps the original, and the clone's agent halts with the error in
``kgate sync status --json``. A clone that lost its state detects the split itself from the register's
cosigned checkpoint.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.store import open_reader
from tests.e2e.conftest import (
    ThreadedRegister,
    append_entries,
    copy_ledger,
    device_entries,
    enrol,
    kgate,
    new_ledger,
    status_json,
    stored_log,
)


def _sync_once(reg: ThreadedRegister, ledger: Path, state: Path) -> subprocess.CompletedProcess[str]:
    return kgate(
        "sync", "once", "--ledger", str(ledger), "--state", str(state), "--register", reg.url,
        "--key", str(ledger.with_name("device.key")), "--register-vkey", reg.keys.cosigner.vkey, "--json",
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(600)  # 41 s seen beside two CPU hogs and other work
def test_cloned_device_equivocates_409_alarm_original_kept_agent_halts(
    work: Path, make_register: Callable[..., ThreadedRegister]
) -> None:
    original = new_ledger(work / "original", 16)
    clone = copy_ledger(original, work / "clone")
    enrol(str(work / "register.db"), original)
    reg = make_register()
    assert _sync_once(reg, clone, work / "clone-sync").returncode == 0  # the shared 16 entries
    append_entries(original, 32, start_ms=1_700_000_100_000, child="A")
    append_entries(clone, 32, start_ms=1_700_000_200_000, child="B")
    pushed = _sync_once(reg, original, work / "original-sync")
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["cosigned_size"] == 48

    clash = _sync_once(reg, clone, work / "clone-sync")
    assert clash.returncode == 4, clash.stdout + clash.stderr  # EquivocationError
    assert "409" in clash.stderr and "EQUIVOCATION" in clash.stderr

    log = stored_log(work / "register.db")
    assert log.entries == device_entries(original)  # the original is kept, nothing overwritten
    assert [(kind, index) for kind, index, _ in log.alarms] == [("equivocation", 16)]
    evidence = json.loads(log.alarms[0][2] or b"{}")
    with open_reader(clone) as r:
        assert evidence["checkpoint"] == r.checkpoint_at(48)
    listed = kgate("register", "alarms", "--db", str(work / "register.db"), "--json")
    assert json.loads(listed.stdout)["index"] == 16

    status = status_json(work / "clone-sync", clone)
    assert status["cosigned_size"] == 16 and status["pending"] == 32
    assert "EQUIVOCATION" in status["last_error"]
    again = _sync_once(reg, clone, work / "clone-sync")
    assert again.returncode == 3 and "halted" in again.stderr  # stays halted until clear-alarm
    assert len(stored_log(work / "register.db").alarms) == 1

    lost_state = _sync_once(reg, clone, work / "clone-fresh-sync")
    assert lost_state.returncode == 4, lost_state.stderr  # the register's cosigned root is not ours
    assert "not the device's root" in status_json(work / "clone-fresh-sync", clone)["last_error"]
    assert stored_log(work / "register.db").entries == device_entries(original)
    verified = kgate("verify", str(work / "register.db"))
    assert verified.returncode == 0, verified.stdout + verified.stderr
