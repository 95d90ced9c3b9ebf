"""One push costs one parse of its checkpoint note and one decode of each entry, shared by the checks,
the табель index and the notification outbox (docs/performance.md), on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import ledger.note
import register.ingest
import register.notify.outbox
import register.tabel.index
from ledger.note import CosignatureSigner, open_note
from register.ingest import Batch
from register.service import Register
from register.store import open_store
from tests.register.conftest import REGISTER
from tests.register.notify_fixtures import day, device_at, subscribe


def _counting(calls: Counter[str], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        return fn(*args, **kwargs)

    return wrapper


def test_a_push_parses_its_note_once_and_decodes_each_entry_once(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = device_at(tmp_path / "dev", int(time.time() * 1000))
    day(dev)  # C0, C1, C2 in; C0 out
    for _ in range(12):
        dev.ledger.append("boot")
    size = dev.ledger.size
    cp = dev.ledger.checkpoint_at(size)
    assert cp is not None and size == 16
    batch = Batch(dev.ledger.origin, 0, tuple(dev.ledger.entries(0, size)), cp, 0, ())
    cosigner = CosignatureSigner.generate(REGISTER)
    with open_store(db_url) as store:
        device = store.add_device(dev.ledger.vkey, kindergarten="K1", gate="north", now_ms=0)
        subscribe(store)
        reg = Register(store, cosigner)
        calls: Counter[str] = Counter()
        parse = _counting(calls, "parse_note", ledger.note.parse_note)
        monkeypatch.setattr(ledger.note, "parse_note", parse)  # open_note, add_signatures
        monkeypatch.setattr(register.ingest, "parse_note", parse)  # the batch check
        for module in (register.ingest, register.notify.outbox, register.tabel.index):
            if hasattr(module, "decode_entry"):
                monkeypatch.setattr(
                    module, "decode_entry", _counting(calls, "decode_entry", module.decode_entry)
                )
        receipt = reg.ingest(device, batch, evidence=b"")
        with store._tx(write=False) as sql:
            indexed = sql.all("SELECT idx, kind, child FROM entry_index ORDER BY idx")
            queued = sql.all(
                "SELECT idx, guardian, channel FROM notify_outbox ORDER BY idx, guardian, channel"
            )
    dev.ledger.close()
    assert calls == {"parse_note": 1, "decode_entry": size}
    assert receipt.size == size
    assert [s.name for s in open_note(receipt.cosigned, [cosigner.verifier()]).verified] == [REGISTER]
    assert [(int(i), k, c) for i, k, c in indexed][:4] == [
        (0, "in", "C0"),
        (1, "in", "C1"),
        (2, "in", "C2"),
        (3, "out", "C0"),
    ]
    assert len(indexed) == size
    assert [(int(i), g, ch) for i, g, ch in queued] == [
        (0, "g-0", "email"),
        (0, "g-0", "webhook"),
        (2, "g-2", "email"),
        (3, "g-0", "email"),
        (3, "g-0", "webhook"),
    ]
