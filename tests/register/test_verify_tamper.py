"""`kgate verify register.db` refuses stored checkpoints that a careful auditor would refuse.

The register database is filled through the real HTTP push path, then changed with sqlite3 as an
attacker with file access would, and checked through the CLI: exit 1, the device and checkpoint named.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kgate.cli import main
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.note import Ed25519Signer, add_signatures
from tests.register.conftest import ORIGIN, Device, Server


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: these tests edit the file directly (the register fixtures' ``db_url``, overridden)."""
    return f"sqlite:///{tmp_path / 'register.db'}"


@pytest.fixture
def register_db(server: Server, enrolled: Device, tmp_path: Path) -> Path:
    enrolled.append(40)
    for start, end in ((0, 16), (16, 32), (32, 40)):
        assert server.push(enrolled.signer, enrolled.body(start, end)).status_code == 200
    return tmp_path / "register.db"


def _row(db: Path, size: int) -> tuple[str, str]:
    conn = sqlite3.connect(db)
    note, cosigned = conn.execute("SELECT note, cosigned FROM checkpoints WHERE size = ?", (size,)).fetchone()
    conn.close()
    return str(note), str(cosigned)


def _store(db: Path, size: int, note: str, cosigned: str, root: bytes | None = None) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE checkpoints SET note = ?, cosigned = ? WHERE size = ?", (note, cosigned, size))
        if root is not None:
            conn.execute("UPDATE checkpoints SET root = ? WHERE size = ?", (root, size))
    conn.close()


def _verify(db: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["verify", str(db)])
    return code, capsys.readouterr().err


def _body(note: str) -> Checkpoint:
    return Checkpoint.parse(note[: note.index("\n\n") + 1])


def test_the_untouched_register_verifies(register_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(register_db)]) == 0
    assert "1 devices, 40 entries verified" in capsys.readouterr().out


def test_a_checkpoint_with_a_wrong_root_signed_by_the_device_is_refused(
    register_db: Path, server: Server, enrolled: Device, capsys: pytest.CaptureFixture[str]
) -> None:
    # Signatures and stored columns all agree; only recomputing the tree shows the lie.
    wrong = bytes(32)
    note = sign_checkpoint(Checkpoint(ORIGIN, 16, wrong), enrolled.signer)
    _store(register_db, 16, note, add_signatures(note, server.cosigner), root=wrong)
    code, err = _verify(register_db, capsys)
    assert code == 1, err
    assert ORIGIN in err and "size 16" in err and err.count("\n") == 1


def test_a_checkpoint_signed_by_another_device_key_is_refused(
    register_db: Path, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    note, _ = _row(register_db, 32)
    forged = sign_checkpoint(_body(note), Ed25519Signer.generate(ORIGIN))  # same name and root
    _store(register_db, 32, forged, add_signatures(forged, server.cosigner))
    code, err = _verify(register_db, capsys)
    assert code == 1, err
    assert ORIGIN in err and "checkpoint of size 32" in err


def test_a_cosigned_copy_of_another_checkpoint_is_refused(
    register_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    note16, _ = _row(register_db, 16)
    _, cosigned32 = _row(register_db, 32)
    _store(register_db, 16, note16, cosigned32)  # validly cosigned, but not this checkpoint
    code, err = _verify(register_db, capsys)
    assert code == 1, err
    assert ORIGIN in err and "checkpoint of size 16" in err
