"""Enrolment at the gate from the terminal's camera (``kgate face enrol --child ID --camera``): the same
consent rule and quality checks as photos, frames checked in memory, only templates stored."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from terminal.face.templates import open_templates
from terminal.roster import load_roster
from tests.conftest import shared_path
from tests.terminal.face.conftest import write_roster

KGATE = [sys.executable, "-m", "kgate"]
FACES = shared_path("data", "faces", "face_recognition")


def gate(tmp_path: Path, frames: list[str]) -> Path:
    """A terminal config whose camera replays ``frames`` (photos) once, and its roster."""
    state, camera = tmp_path / "state", tmp_path / "camera"
    state.mkdir()
    camera.mkdir()
    for n, name in enumerate(frames):
        shutil.copy(FACES / name, camera / f"{n:03d}{Path(name).suffix}")
    doc = write_roster(tmp_path / "roster.json", [("c-yes", True), ("c-no", False)])
    load_roster(state / "roster.db", doc).close()
    config = tmp_path / "terminal.toml"
    config.write_text(
        f"""
[ledger]
path = "{state / "ledger.db"}"
origin = "reg.test/kgate/gate-1"
[roster]
path = "{state / "roster.db"}"
[camera]
backend = "replay"
paths = ["{camera}"]
loop = false
""",
        encoding="utf-8",
    )
    return config


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KGATE, *args], check=False, capture_output=True, text=True, timeout=180)


@pytest.mark.slow
def test_enrol_from_the_camera(tmp_path: Path) -> None:
    # Staff hold the child in front of the camera: the first frames are unusable (too small, two people).
    frames = ["obama-240p.jpg", "two_people.jpg"] + [
        "train__obama__obama.jpg",
        "train__obama__obama2.jpg",
    ] * 6
    config = gate(tmp_path, frames)
    state = tmp_path / "state"
    refused = run("face", "enrol", "--config", str(config), "--child", "c-no", "--camera")
    assert refused.returncode == 2
    assert (
        refused.stderr.strip()
        == "kgate: error: child c-no has no face consent in the roster; use the badge only"
    )
    assert not (state / "faces.db").exists()

    ok = run("face", "enrol", "--config", str(config), "--child", "c-yes", "--camera")
    assert ok.returncode == 0, ok.stderr
    assert "child c-yes: 3 template(s) stored" in ok.stdout
    with open_templates(state / "faces.db", state / "face.key") as store:
        assert store.count("c-yes") == 3
    images = [p for p in state.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp", ".ppm"}]
    assert images == []


@pytest.mark.slow
def test_camera_without_good_frames_stores_nothing(tmp_path: Path) -> None:
    config = gate(tmp_path, ["obama-240p.jpg", "two_people.jpg", "train__obama__obama.jpg"])
    out = run("face", "enrol", "--config", str(config), "--child", "c-yes", "--camera")
    assert out.returncode != 0 and out.stderr.count("\n") == 1
    assert out.stderr.startswith("kgate: error: only 1 of 3 good frames")
    with open_templates(tmp_path / "state" / "faces.db", tmp_path / "state" / "face.key") as store:
        assert store.count() == 0
    both = run("face", "enrol", "--config", str(config), "--child", "c-yes", "--camera", "x.jpg")
    assert both.returncode == 2 and "either PHOTO files or --camera" in both.stderr
