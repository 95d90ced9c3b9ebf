"""``kgate face identify`` on the shared corpus: <=3 gallery photos per person, the rest as probes."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from terminal.face.identify import Identified, build_gallery, identify
from terminal.face.pipeline import FacePipeline
from tests.conftest import shared_path


def split(faces: Path, gallery: Path, seed: int = 3) -> tuple[list[Path], list[Path], list[Path]]:
    """Link up to 3 photos of each person with >=2 photos into ``gallery``; returns (known probes,
    strangers, negatives). A probe in the same dup_group as a gallery photo is not an independent
    match and is left out."""
    rows = [json.loads(line) for line in (faces / "manifest.jsonl").read_text().splitlines()]
    people: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["identity"]:
            people[row["identity"]].append(row)
    rnd = random.Random(seed)
    known: list[Path] = []
    strangers: list[Path] = []
    for person, photos in sorted(people.items()):
        rnd.shuffle(photos)
        if len(photos) == 1:
            strangers.append(faces / photos[0]["file"])
            continue
        chosen = photos[: min(3, len(photos) - 1)]
        (gallery / person).mkdir(parents=True)
        for row in chosen:
            (gallery / person / Path(row["file"]).name).symlink_to(faces / row["file"])
        groups = {r["dup_group"] for r in chosen if r["dup_group"]}
        known += [faces / r["file"] for r in photos[len(chosen) :] if r["dup_group"] not in groups]
    negatives = [faces / r["file"] for r in rows if r.get("negative")]
    return known, strangers, negatives


@pytest.mark.slow
@pytest.mark.timeout(600)  # ~150 photos through detection and descriptors: a minute alone, more when shared
def test_identify_meets_the_bar(pipeline: FacePipeline, tmp_path: Path) -> None:
    faces = shared_path("data", "faces")
    known, strangers, negatives = split(faces, tmp_path / "gallery")
    gallery, problems = build_gallery(pipeline, tmp_path / "gallery")
    assert problems == []
    labels = {
        json.loads(line)["file"]: json.loads(line)["identity"] for line in (faces / "manifest.jsonl").open()
    }
    results = [
        r for r in identify(pipeline, gallery, known + strangers + negatives) if isinstance(r, Identified)
    ]
    by_image = {r.image: r for r in results}
    right = wrong = 0
    for probe in known:
        expected = labels[str(probe.relative_to(faces))]
        got = by_image[str(probe)].identity
        right += got == expected
        wrong += got is not None and got != expected
    assert wrong == 0
    assert right >= 0.9 * len(known), (right, len(known))
    assert all(by_image[str(p)].identity is None for p in strangers + negatives)


@pytest.mark.slow
def test_identify_command_contract(tmp_path: Path) -> None:
    faces = shared_path("data", "faces", "face_recognition")
    (tmp_path / "g" / "obama").mkdir(parents=True)
    (tmp_path / "g" / "obama" / "a.jpg").symlink_to(faces / "train__obama__obama.jpg")
    (tmp_path / "g" / "biden").mkdir()
    (tmp_path / "g" / "biden" / "b.jpg").symlink_to(faces / "train__biden__biden2.jpg")
    (tmp_path / "junk.jpg").write_text("not an image")
    images = [faces / "obama3.jpg", tmp_path / "junk.jpg", faces / "lin-manuel-miranda.png"]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "kgate",
            "face",
            "identify",
            "--gallery",
            str(tmp_path / "g"),
            "--json",
            *map(str, images),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [f"kgate face identify: {tmp_path / 'junk.jpg'}: not an image"]
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["image"], r["identity"]) for r in lines] == [(str(images[0]), "obama"), (str(images[2]), None)]
    assert set(lines[0]) == {"image", "identity", "distance", "ms"} and 0 < lines[0]["distance"] < 0.5
    assert lines[0]["ms"] > 0
