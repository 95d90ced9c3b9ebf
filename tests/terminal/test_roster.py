"""The local roster: validation, one-transaction install, no rollback, lookups."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from terminal.badge import new_serial
from terminal.roster import Child, RosterError, load_roster, open_roster

SERIAL_A = new_serial()
SERIAL_B = new_serial()


def roster_doc(version: int = 1, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": version,
        "children": [
            {"id": "c-1", "name": "Әлия Қасымова", "group": "Күн", "consent_face": True},
            {"id": "c-2", "name": "Ivan", "group": "Sun"},
        ],
        "badges": [
            {"serial": SERIAL_A, "child": "c-1"},
            {"serial": SERIAL_B, "child": "c-2", "revoked": True},
        ],
    }
    doc.update(extra)
    return doc


def write(tmp_path: Path, doc: object, name: str = "roster.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def test_load_and_lookup(tmp_path: Path) -> None:
    with load_roster(tmp_path / "r.db", write(tmp_path, roster_doc())) as roster:
        assert roster.version == 1
        a = roster.lookup(SERIAL_A)
        assert a is not None and not a.revoked
        assert a.child == Child("c-1", "Әлия Қасымова", "Күн", True)
        b = roster.lookup(SERIAL_B)
        assert b is not None and b.revoked and b.child.id == "c-2"
        assert roster.lookup(new_serial()) is None
        assert roster.child("c-2") == Child("c-2", "Ivan", "Sun", False)
        assert [c.id for c in roster.children()] == ["c-2", "c-1"]


def test_never_rolls_back(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    load_roster(db, write(tmp_path, roster_doc(5))).close()
    with pytest.raises(RosterError, match="older"):
        load_roster(db, write(tmp_path, roster_doc(4)))
    load_roster(db, write(tmp_path, roster_doc(5))).close()  # same content again: a no-op
    changed = roster_doc(5)
    changed["badges"][1]["revoked"] = False
    with pytest.raises(RosterError, match="other content"):
        load_roster(db, write(tmp_path, changed))
    changed["version"] = 6
    with load_roster(db, write(tmp_path, changed)) as roster:
        assert roster.version == 6
        record = roster.lookup(SERIAL_B)
        assert record is not None and not record.revoked


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(version=0), "version"),
        (lambda d: d.update(version=True), "version"),
        (lambda d: d.update(extra=1), "unknown key"),
        (lambda d: d["children"].append(dict(d["children"][0])), "twice"),
        (lambda d: d["children"][0].update(id="bad id"), "id"),
        (lambda d: d["children"][0].update(name=""), "name"),
        (lambda d: d["children"][0].update(consent_face="yes"), "consent_face"),
        (lambda d: d["badges"][0].update(serial="0" * 16), "serial"),
        (lambda d: d["badges"][0].update(child="c-9"), "not in roster.children"),
        (lambda d: d["badges"].append(dict(d["badges"][0])), "twice"),
    ],
)
def test_invalid_roster_installs_nothing(tmp_path: Path, mutate: Any, message: str) -> None:
    db = tmp_path / "r.db"
    load_roster(db, write(tmp_path, roster_doc(1))).close()
    doc = roster_doc(2)
    mutate(doc)
    with pytest.raises(RosterError, match=re.escape(message)):
        load_roster(db, write(tmp_path, doc))
    with open_roster(db) as roster:
        assert roster.version == 1
        assert roster.lookup(SERIAL_A) is not None


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(b"\xff\xfe{")
    with pytest.raises(RosterError, match="JSON"):
        load_roster(tmp_path / "r.db", path)
    with pytest.raises(RosterError, match="cannot read"):
        load_roster(tmp_path / "r.db", tmp_path / "missing.json")


GUARDIAN_BADGE = new_serial()
REVOKED_GUARDIAN_BADGE = new_serial()


def with_guardians(version: int = 1) -> dict[str, Any]:
    """The register's roster_document shape: kindergarten, guardians and guardian badges."""
    doc = roster_doc(version, kindergarten="k-7")
    doc["guardians"] = [{"id": "g-1", "name": "Дана Қасымова", "children": ["c-1"]}]
    doc["badges"] += [
        {"serial": GUARDIAN_BADGE, "guardian": "g-1", "revoked": False},
        {"serial": REVOKED_GUARDIAN_BADGE, "guardian": "g-1", "revoked": True},
    ]
    return doc


def test_guardians_and_their_badges_install(tmp_path: Path) -> None:
    with load_roster(tmp_path / "r.db", write(tmp_path, with_guardians())) as roster:
        assert roster.kindergarten == "k-7"
        badge = roster.lookup_guardian(GUARDIAN_BADGE)
        assert badge is not None and not badge.revoked
        assert badge.guardian.name == "Дана Қасымова" and badge.guardian.children == {"c-1"}
        revoked = roster.lookup_guardian(REVOKED_GUARDIAN_BADGE)
        assert revoked is not None and revoked.revoked
        # a guardian badge is never a child's badge, and the other way round
        assert roster.lookup(GUARDIAN_BADGE) is None
        assert roster.lookup_guardian(SERIAL_A) is None


def test_old_format_digest_unchanged_and_guardians_replaced(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    load_roster(db, write(tmp_path, roster_doc(1))).close()
    load_roster(db, write(tmp_path, roster_doc(1))).close()  # same roster again: still a no-op
    load_roster(db, write(tmp_path, with_guardians(2))).close()
    with load_roster(db, write(tmp_path, roster_doc(3, kindergarten="k-7"))) as roster:
        assert roster.version == 3 and roster.lookup_guardian(GUARDIAN_BADGE) is None


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["badges"].append({"serial": new_serial()}), "needs exactly one of child or guardian"),
        (
            lambda d: d["badges"].append({"serial": new_serial(), "child": "c-1", "guardian": "g-1"}),
            "needs exactly one of child or guardian",
        ),
        (
            lambda d: d["badges"].append({"serial": new_serial(), "guardian": "g-9"}),
            "not in roster.guardians",
        ),
        (lambda d: d["guardians"][0]["children"].append("c-9"), "guardians[0].children[1]: 'c-9'"),
        (lambda d: d["guardians"].append({"id": "c-1", "name": "x", "children": []}), "appears twice"),
        (lambda d: d["badges"].append({"serial": GUARDIAN_BADGE, "child": "c-1"}), "appears twice"),
    ],
)
def test_bad_guardians_refused_and_nothing_installed(tmp_path: Path, mutate: Any, message: str) -> None:
    doc = with_guardians(2)
    mutate(doc)
    db = tmp_path / "r.db"
    load_roster(db, write(tmp_path, roster_doc(1))).close()
    with pytest.raises(RosterError, match=re.escape(message)):
        load_roster(db, write(tmp_path, doc, "bad.json"))
    with open_roster(db) as roster:
        assert roster.version == 1


def test_roster_of_another_kindergarten_refused(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    load_roster(db, write(tmp_path, with_guardians(1))).close()
    with pytest.raises(RosterError, match="kindergarten 'k-8'"):
        load_roster(db, write(tmp_path, roster_doc(2, kindergarten="k-8")))
