"""The demo with faces: badge sharing refused and recorded, and no image or raw descriptor left on disk."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from kgate.demo import run_demo
from kgate.demo_faces import PORTRAITS, portrait_path
from ledger.entry import decode_entry
from ledger.store import open_reader
from terminal.face.enrol import template_from_photo
from terminal.face.images import load_rgb
from terminal.face.pipeline import FacePipeline

#: Folders of the demo output that hold pictures on purpose: rendered gate screens (the demo's preview
#: shows the public-domain portrait) and the synthetic badge photos the morning rush replays (no faces).
PICTURE_FOLDERS = {"screens", "rush"}
#: The provisioned gate's replay camera (terminal.toml, backend "replay"): one QR card, no face.
CAMERA_FOLDER = ("gate", "etc", "kgate", "camera")


def is_image(path: Path) -> bool:
    try:
        with Image.open(path) as im:
            im.verify()
    except Exception:
        return False
    return True


@pytest.mark.slow
@pytest.mark.timeout(600)  # runs the whole demo (30 children)
def test_demo_with_faces_leaves_no_image_or_descriptor(tmp_path: Path, pipeline: FacePipeline) -> None:
    if any(portrait_path(name) is None for name in PORTRAITS):
        pytest.skip("the demo portraits need scikit-image and matplotlib (pip install -e '.[demo]')")
    out = tmp_path / "out"
    summary = run_demo(out, children=30)
    faces = summary.faces
    assert faces["skipped"] is None
    assert (faces["accepted_with_face"], faces["refused_mismatch"], faces["badge_only"]) == (1, 1, 1)
    assert "face-badge-mismatch-ru.png" in summary.screens

    with open_reader(out / "device" / "ledger.db") as reader:
        entries = [decode_entry(e) for e in reader.entries(0, reader.size)]
    mismatch = [e for e in entries if e.reason == "face_mismatch"]
    assert len(mismatch) == 1 and mismatch[0].kind == "rejected"
    assert mismatch[0].evidence["face_method"] == 4 and mismatch[0].child == faces["enrolled"][1]
    assert all(
        isinstance(v, (int, str)) and not isinstance(v, bytes) for e in entries for v in e.evidence.values()
    )

    # The templates the demo stored, recomputed the same way: none may appear in any file, in any float form.
    descriptors = []
    for name in PORTRAITS:
        path = portrait_path(name)
        assert path is not None
        descriptors.append(template_from_photo(pipeline, load_rgb(path), name))
    state = out / "device"
    assert (state / "faces.db").exists()
    for path in out.rglob("*"):
        if not path.is_file():
            continue
        parts = path.relative_to(out).parts
        selftest_screen = parts == ("device", "selftest-screen.png")  # the idle screen provisioning drew
        if parts[0] not in PICTURE_FOLDERS and parts[:-1] != CAMERA_FOLDER and not selftest_screen:
            assert not is_image(path), f"image file left on disk: {path}"
        raw = path.read_bytes()
        for vector in descriptors:
            for dtype in ("<f4", "<f8", ">f4"):
                for start in range(0, 128, 32):
                    chunk = vector[start : start + 4].astype(dtype).tobytes()
                    assert chunk not in raw, f"raw descriptor bytes in {path}"
    with sqlite3.connect(state / "faces.db") as conn:
        assert conn.execute("SELECT count(*) FROM templates").fetchone()[0] == 2
