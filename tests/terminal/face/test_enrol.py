"""Enrolment from photos: consent first, quality checks with clear refusals, all or nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from terminal.face.enrol import enrol
from terminal.face.errors import EnrolmentRefused, NoConsent
from terminal.face.pipeline import FacePipeline
from terminal.face.templates import open_templates
from terminal.roster import load_roster
from tests.conftest import shared_path
from tests.terminal.face.conftest import write_roster

KGATE = [sys.executable, "-m", "kgate"]


@pytest.fixture
def roster_db(tmp_path: Path) -> Path:
    doc = write_roster(tmp_path / "roster.json", [("c-yes", True), ("c-no", False)])
    load_roster(tmp_path / "roster.db", doc).close()
    return tmp_path / "roster.db"


@pytest.mark.slow
def test_enrol_refusals_store_nothing(pipeline: FacePipeline, roster_db: Path, tmp_path: Path) -> None:
    faces = shared_path("data", "faces")
    good = faces / "face_recognition" / "train__obama__obama.jpg"
    cases = {
        faces / "face_recognition" / "two_people.jpg": "2 faces",
        faces / "negatives" / "dog.jpg": "no face found",
        faces / "face_recognition" / "obama-240p.jpg": "too small",
    }
    with (
        load_roster(
            roster_db, write_roster(tmp_path / "r.json", [("c-yes", True), ("c-no", False)])
        ) as roster,
        open_templates(tmp_path / "faces.db", tmp_path / "face.key") as store,
    ):
        for photo, message in cases.items():
            with pytest.raises(EnrolmentRefused, match=message):
                enrol(store, roster, pipeline, "c-yes", [good, photo])
        assert store.count() == 0  # the good photo was not stored either
        with pytest.raises(NoConsent, match="no face consent"):
            enrol(store, roster, pipeline, "c-no", [good])
        with pytest.raises(NoConsent, match="not in the roster"):
            enrol(store, roster, pipeline, "c-ghost", [good])
        assert enrol(store, roster, pipeline, "c-yes", [good]) == 1
        assert store.gallery().labels == ["c-yes"]


@pytest.mark.slow
def test_enrol_and_forget_commands(roster_db: Path, tmp_path: Path) -> None:
    good = shared_path("data", "faces", "face_recognition", "train__obama__obama.jpg")
    where = ["--roster", str(roster_db), "--key", str(tmp_path / "face.key")]
    refused = subprocess.run(
        [*KGATE, "face", "enrol", *where, "--child", "c-no", str(good)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2
    assert (
        refused.stderr.strip()
        == "kgate: error: child c-no has no face consent in the roster; use the badge only"
    )
    assert not (tmp_path / "faces.db").exists() and not (tmp_path / "face.key").exists()
    ok = subprocess.run(
        [*KGATE, "face", "enrol", *where, "--child", "c-yes", str(good)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert "1 template(s) stored" in ok.stdout
    gone = subprocess.run(
        [*KGATE, "face", "forget", *where, "c-yes"], check=False, capture_output=True, text=True, timeout=60
    )
    assert gone.returncode == 0 and "1 template(s) deleted" in gone.stdout
    with open_templates(tmp_path / "faces.db", tmp_path / "face.key") as store:
        assert store.count() == 0


def test_roster_install_prunes_withdrawn_consent(roster_db: Path, tmp_path: Path) -> None:
    import numpy as np

    with open_templates(tmp_path / "faces.db", tmp_path / "face.key") as store:
        store.add("c-yes", [np.full(128, 0.01, dtype=np.float32)])
    doc = write_roster(tmp_path / "v2.json", [("c-yes", False), ("c-no", False)], version=2)
    out = subprocess.run(
        [*KGATE, "roster", "load", str(doc), "--db", str(roster_db)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "face templates of 1 withdrawn or departed child(ren) deleted" in out.stdout
    with open_templates(tmp_path / "faces.db", tmp_path / "face.key") as store:
        assert store.count() == 0
