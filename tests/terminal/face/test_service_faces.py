"""``kgate terminal run`` in mode qr+face: the service builds the face check from the config, detects the
face on the camera stream, and the entry carries the face evidence; nothing but templates on disk."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from hardware.camera.synthetic import render_badge_photo
from ledger.entry import decode_entry
from ledger.store import open_reader
from terminal.badge import encode_badge, new_serial
from terminal.config import load_config
from terminal.face.check import FaceMethod
from terminal.face.enrol import template_from_photo
from terminal.face.images import load_rgb
from terminal.face.pipeline import FacePipeline
from terminal.face.templates import open_templates
from terminal.roster import load_roster
from terminal.service import serve
from tests.conftest import shared_path


def config(tmp_path: Path, state: Path, photos: Path, mode: str) -> Path:
    path = tmp_path / "terminal.toml"
    path.write_text(
        f"""
[ledger]
path = "{state / "ledger.db"}"
origin = "reg.test/kgate/gate-1"
[roster]
path = "{state / "roster.db"}"
[camera]
backend = "replay"
paths = ["{photos}"]
loop = false
[gate]
mode = "{mode}"
hours = ["00:00", "23:59:59.999999"]
[service]
status_file = "{state / "terminal-status.json"}"
""",
        encoding="utf-8",
    )
    return path


@pytest.mark.slow
def test_service_in_qr_face_mode(tmp_path: Path, pipeline: FacePipeline) -> None:
    faces = shared_path("data", "faces", "face_recognition")
    state, photos = tmp_path / "state", tmp_path / "camera"
    state.mkdir()
    photos.mkdir()
    serial = new_serial()
    roster = {
        "version": 1,
        "children": [{"id": "c-1", "name": "Ann", "group": "Sun", "consent_face": True}],
        "badges": [{"serial": serial, "child": "c-1"}],
    }
    (tmp_path / "roster.json").write_text(json.dumps(roster))
    load_roster(state / "roster.db", tmp_path / "roster.json").close()
    with open_templates(state / "faces.db", state / "face.key") as store:
        store.add(
            "c-1", [template_from_photo(pipeline, load_rgb(faces / "train__obama__obama.jpg"), "enrol")]
        )
    # The camera stand-in: the child's face on the left, the badge held up on the right.
    badge = cv2.imdecode(
        np.frombuffer(render_badge_photo(encode_badge(serial), "Ann", 5, difficulty=0.0).jpeg, np.uint8), 1
    )
    assert badge is not None
    face = cv2.cvtColor(load_rgb(faces / "train__obama__obama2.jpg"), cv2.COLOR_RGB2BGR)
    frame = np.full((720, 1280, 3), 80, np.uint8)
    frame[:, 640:] = cv2.resize(badge, (640, 720))
    scaled = cv2.resize(face, (round(face.shape[1] * 600 / face.shape[0]), 600))[:, :620]
    frame[60:660, 10 : 10 + scaled.shape[1]] = scaled
    cv2.imwrite(str(photos / "frame.png"), frame)

    stats = serve(load_config(config(tmp_path, state, photos, "qr+face")), max_frames=2)
    assert stats.frames >= 1
    with open_reader(state / "ledger.db") as reader:
        entries = [decode_entry(e) for e in reader.entries(0, reader.size)]
    checkin = [e for e in entries if e.kind == "in"]
    assert len(checkin) == 1 and checkin[0].method == "qr+face"
    assert checkin[0].evidence["face_method"] == FaceMethod.FACE_MATCH
    images = [p for p in state.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp", ".ppm"}]
    assert images == []


@pytest.mark.slow
def test_service_in_face_mode(tmp_path: Path, pipeline: FacePipeline) -> None:
    """Mode face: three camera frames of a consenting enrolled child check them in, no badge shown."""
    faces = shared_path("data", "faces", "face_recognition")
    state, photos = tmp_path / "state", tmp_path / "camera"
    state.mkdir()
    photos.mkdir()
    roster = {
        "version": 1,
        "children": [
            {"id": "c-1", "name": "Ann", "group": "Sun", "consent_face": True},
            {"id": "c-2", "name": "Bob", "group": "Sun", "consent_face": False},
        ],
        "badges": [],
    }
    (tmp_path / "roster.json").write_text(json.dumps(roster))
    load_roster(state / "roster.db", tmp_path / "roster.json").close()
    with open_templates(state / "faces.db", state / "face.key") as store:
        store.add(
            "c-1", [template_from_photo(pipeline, load_rgb(faces / "train__obama__obama.jpg"), "enrol")]
        )
    for n, name in enumerate(("obama3.jpg", "train__obama__obama2.jpg", "obama3.jpg")):
        shutil.copy(faces / name, photos / f"frame{n}.jpg")  # the camera stand-in replays the photos

    stats = serve(load_config(config(tmp_path, state, photos, "face")), max_frames=10)
    assert stats.frames == 3 and stats.outcomes == {"accepted": 1}
    with open_reader(state / "ledger.db") as reader:
        entries = [decode_entry(e) for e in reader.entries(0, reader.size)]
    [checkin] = [e for e in entries if e.kind == "in"]
    assert (checkin.child, checkin.method) == ("c-1", "face")
    assert checkin.evidence["face_method"] == FaceMethod.FACE_MATCH
    images = [p for p in state.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp", ".ppm"}]
    assert images == []
