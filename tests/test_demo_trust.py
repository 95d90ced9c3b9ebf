"""Issue 8's bar on the demo: badges.pdf decodes on every badge, the delivered roster, guardian pickup.

The demo runs once for the module (30 children); the checks read its files as an outsider would:
the PDF rendered by ``pdftoppm -r 150`` and decoded by zxing-cpp, the device's ``roster.db``, the
register's published versions, and the device ledger's entries.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from kgate.cli import main
from ledger.entry import Entry, decode_entry
from ledger.store import open_reader
from register.store import open_store
from register.store.roster import roster_document, roster_versions
from terminal.badge import parse_badge
from terminal.roster import open_roster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # the module fixture runs the demo (30 children)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("demo")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["demo", "--out", str(out), "--children", "30", "--json"]) == 0
    return out, json.loads(buf.getvalue())


def _register_document(out: Path) -> dict[str, Any]:
    """The newest roster the register published (what the gate must hold)."""

    with open_store(str(out / "register" / "register.db")) as store:
        versions = roster_versions(store, "almaty-042")
        doc: dict[str, Any] = json.loads(roster_document(store, "almaty-042"))
    assert doc["version"] == versions[-1].version
    return doc


def test_every_badge_on_the_sheets_decodes_to_a_roster_person_exactly_once(
    demo: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    zxingcpp = pytest.importorskip("zxingcpp")

    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    out, summary = demo
    pdf = out / "badges.pdf"
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(pdf), str(tmp_path / "p")], check=True, timeout=120)
    pages = sorted(tmp_path.glob("p-*.png"))
    assert len(pages) == summary["badge_pages"]
    decoded: list[str] = []
    for page in pages:
        results = zxingcpp.read_barcodes(Image.open(page), formats=zxingcpp.BarcodeFormat.QRCode)
        decoded += [r.text for r in results]
    doc = _register_document(out)
    holder = {
        b["serial"]: ("child", b["child"]) if "child" in b else ("guardian", b["guardian"])
        for b in doc["badges"]
        if not b["revoked"]
    }
    people = [("child", c["id"]) for c in doc["children"]] + [("guardian", g["id"]) for g in doc["guardians"]]
    got = Counter(holder[parse_badge(text.encode()).serial] for text in decoded)
    assert sorted(got) == sorted(people)  # every child and guardian, nobody else
    assert set(got.values()) == {1}  # exactly one badge each
    assert len(decoded) == summary["badges_printed"] == len(people)
    assert summary["guardians"] == len(doc["guardians"]) >= 30


def test_the_device_holds_the_version_the_register_published(demo: tuple[Path, dict[str, Any]]) -> None:
    out, summary = demo
    doc = _register_document(out)
    with open_roster(out / "device" / "roster.db") as roster:
        assert roster.version == doc["version"] == summary["roster_version"] == 2
        assert roster.kindergarten == "almaty-042"
        assert {c.id for c in roster.children()} == {c["id"] for c in doc["children"]}
    enrolled = json.loads((out / "device" / "enrolment.json").read_text(encoding="utf-8"))
    assert enrolled["origin"] == summary["origin"] == "register.demo.kgate.kz/kgate/almaty-042-gate-1"
    assert (out / "register" / "rosters" / "almaty-042" / "metadata" / "timestamp.json").is_file()


def test_the_gate_is_provisioned_with_kgate_provisions_steps(demo: tuple[Path, dict[str, Any]]) -> None:
    """The simulated gate went through provisioning/device.py over the local transport (issue 12)."""
    out, summary = demo
    status = {s["step"]: s["status"] for s in summary["provision_steps"]}
    assert list(status) == ["os", "packages", "user", "venv", "enrol", "config", "units",
                            "camera", "screen", "ledger", "register", "roster"]  # fmt: skip
    assert {k for k, v in status.items() if v == "changed"} == {"user", "enrol", "config", "units"}
    assert status["roster"] == "skipped"  # published: the agent's first update (from sync.toml) delivers it
    assert summary["provisioned"] == f"{out / 'gate'}: 4 changed, 2 unchanged, 6 skipped"
    assert (out / "gate" / "var" / "lib" / "kgate").resolve() == (out / "device").resolve()
    # The agent's configuration the provisioning wrote is what pushed the day and fetched the roster.
    sync_toml = (out / "gate" / "etc" / "kgate" / "sync.toml").read_text(encoding="utf-8")
    assert 'kindergarten = "almaty-042"' in sync_toml
    assert (out / "device" / "sync" / "sync-state.db").is_file()
    units = out / "gate" / "etc" / "systemd" / "system"
    assert {p.name for p in (units / "multi-user.target.wants").iterdir()} == {
        "kgate-terminal.service", "kgate-sync.service"
    }  # fmt: skip


def _entries(out: Path) -> list[Entry]:
    with open_reader(out / "device" / "ledger.db") as reader:
        return [decode_entry(raw) for raw in reader.entries(0, reader.size)]


def test_the_evening_goes_through_guardian_pickup(demo: tuple[Path, dict[str, Any]]) -> None:
    out, summary = demo
    doc = _register_document(out)
    may_pick = {g["id"]: set(g["children"]) for g in doc["guardians"]}
    entries = _entries(out)
    outs = [e for e in entries if e.kind == "out"]
    assert len(outs) == summary["checked_out"] == summary["present"]
    for e in outs:  # every child left with a guardian listed for them
        assert e.child in may_pick[str(e.evidence["guardian"])]
    refused = [e for e in entries if e.kind == "rejected" and e.reason == "pickup_unauthorized"]
    assert len(refused) == summary["pickups_refused"] == 1
    (bad,) = refused
    assert bad.child not in may_pick[str(bad.evidence["guardian"])]
    assert any(e.child == bad.child for e in outs)  # the child left later, with their own guardian
    for lang in ("kk", "ru", "en"):
        assert (out / "screens" / f"refused-pickup_unauthorized-{lang}.png").is_file()
