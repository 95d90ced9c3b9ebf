"""A device the operator disabled is refused (403) and nothing it sends is stored."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.register.conftest import Device, Server


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the operator's switch is a column set directly in the file."""
    return f"sqlite:///{tmp_path / 'register.db'}"


def _set_disabled(db: Path, disabled: bool) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE devices SET disabled = ?", (disabled,))
    conn.close()


def test_a_disabled_devices_push_is_refused(server: Server, enrolled: Device, tmp_path: Path) -> None:
    enrolled.append(32)
    assert server.push(enrolled.signer, enrolled.body(0, 16)).status_code == 200
    _set_disabled(tmp_path / "register.db", True)
    r = server.push(enrolled.signer, enrolled.body(16, 32))
    assert r.status_code == 403, r.text
    assert server.send("GET", "/v1/state", enrolled.signer).status_code == 403
    dev = server.store.device_by_origin(enrolled.ledger.origin)
    assert dev is not None and dev.disabled and dev.size == 16
    _set_disabled(tmp_path / "register.db", False)
    assert server.push(enrolled.signer, enrolled.body(16, 32)).status_code == 200
