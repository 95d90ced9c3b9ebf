"""Badge sheets: the PDF, rendered by poppler at 150 dpi, decodes on every badge with zxing-cpp, and each
payload is an active badge of the roster (children and guardians)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from kgate.cli import main
from register.badges import MODULE_MM
from register.roster_csv import parse_csv
from register.store import open_store
from register.store.roster import import_roster, reissue_badge, roster_document
from terminal.badge import parse_badge

pytestmark = pytest.mark.skipif(
    shutil.which("pdftoppm") is None, reason="pdftoppm: apt-get install poppler-utils"
)

ROWS = ["kind,id,name,group,consent_face,guardian_of"]
ROWS += [f"child,c-{i:03d},{n},{g},yes," for i, (n, g) in enumerate([
    ("Әлихан Нұрланұлы", "Күншуақ"), ("Аружан Серікқызы", "Күншуақ"), ("Мария Иванова", "Солнышко"),
    ("Өмірзақ Ұлықбекұлы Қайырбеков", "Балапан"), ("Іңкәр Һ. Ғабитқызы", "Балапан"), ("Ян Ли", "Солнышко"),
    ("Фатима-Зәмзәгүл Жақсыбекова-Нұрмағамбетова", "Күншуақ"), ("Тимур", "Балапан"), ("Ева", "Солнышко"),
])]  # fmt: skip
ROWS += ["guardian,g-01,Нұрлан Әлиұлы,,,c-000;c-001", "guardian,g-02,Анна Иванова,,,c-002;c-005"]
CSV = ("\n".join(ROWS) + "\n").encode()


def _decode_pdf(pdf: Path, tmp: Path) -> list[bytes]:
    import zxingcpp

    subprocess.run(["pdftoppm", "-r", "150", "-png", str(pdf), str(tmp / "page")], check=True, timeout=60)
    found: list[bytes] = []
    pages = sorted(tmp.glob("page*.png"))
    assert pages
    for page in pages:
        with Image.open(page) as img:
            found += [r.bytes for r in zxingcpp.read_barcodes(img.convert("L"))]
    return found


def test_every_badge_on_the_sheet_decodes_to_an_active_badge(tmp_path: Path) -> None:
    db = str(tmp_path / "register.db")
    with open_store(db) as store:
        import_roster(store, "K1", parse_csv(CSV))
        reissue_badge(store, "K1", "c-003")  # the old serial is revoked: it must not be printed
        doc = json.loads(roster_document(store, "K1"))
    active = {b["serial"] for b in doc["badges"] if not b["revoked"]}
    revoked = {b["serial"] for b in doc["badges"] if b["revoked"]}
    assert len(active) == 11 and len(revoked) == 1
    out = tmp_path / "badges.pdf"
    assert main(["register", "badge", "print", "--kindergarten", "K1", "--out", str(out), "--db", db]) == 0
    assert out.read_bytes().startswith(b"%PDF")
    decoded = _decode_pdf(out, tmp_path)
    serials = [parse_badge(raw).serial for raw in decoded]  # every payload is a valid v1 badge
    assert sorted(serials) == sorted(active)  # each badge exactly once, none revoked


def test_group_selection_prints_its_children_and_their_guardians(tmp_path: Path) -> None:
    db = str(tmp_path / "register.db")
    with open_store(db) as store:
        import_roster(store, "K1", parse_csv(CSV))
        doc = json.loads(roster_document(store, "K1"))
    out = tmp_path / "sun.pdf"
    cmd = ["register", "badge", "print", "--kindergarten", "K1", "--out", str(out), "--db", db]
    assert main([*cmd, "--group", "Солнышко"]) == 0
    want = {b["serial"] for b in doc["badges"] if b.get("child") in {"c-002", "c-005", "c-008"}}
    want |= {b["serial"] for b in doc["badges"] if b.get("guardian") == "g-02"}
    assert {parse_badge(raw).serial for raw in _decode_pdf(out, tmp_path)} == want
    assert main([*cmd, "--group", "Нет"]) == 2


def test_module_size_reads_at_30_cm() -> None:
    # docs/badges.md: Camera Module 3 (66° horizontal) at 30 cm sees 389.6 mm across 1280 px.
    px_per_mm = 1280 / (2 * 300 * 0.6494)
    assert MODULE_MM * px_per_mm >= 4
