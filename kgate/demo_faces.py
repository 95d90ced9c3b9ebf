"""The demo's faces: ``qr+face`` late arrivals with two public-domain portraits; only templates are stored.

After the morning rush, a new roster version gives face consent to two children who had not come yet
(installing it runs the template retention step). Child A is enrolled from NASA's portrait of astronaut
Eileen Collins (``skimage/data/astronaut.png``, public domain), child B from the U.S. Navy portrait of
Grace Hopper (``matplotlib/mpl-data/sample_data/grace_hopper.jpg``, public domain). The gate is switched
to ``qr+face``; then A arrives with her badge and her face (accepted), A's face with B's badge is refused
("badge and face do not match", a ``rejected`` entry with the evidence), and C, without consent, comes in
on the badge alone. The portraits are read from the installed packages and held in memory: the only face
data on disk afterwards are the encrypted templates in ``device/faces.db``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hardware.camera.frame import Frame

#: (package, path inside it, who, licence) of each portrait.
PORTRAITS = {
    "astronaut": ("skimage", "data/astronaut.png", "Eileen Collins, NASA portrait", "public domain (NASA)"),
    "hopper": (
        "matplotlib",
        "mpl-data/sample_data/grace_hopper.jpg",
        "Grace Hopper",
        "public domain (U.S. Navy)",
    ),
}


@dataclass
class FaceDemo:
    """What the face part of the demo did (``skipped`` says why it did not run)."""

    skipped: str | None = None
    enrolled: list[str] = field(default_factory=list)
    accepted_with_face: int = 0
    refused_mismatch: int = 0
    badge_only: int = 0
    screens: list[str] = field(default_factory=list)


def portrait_path(name: str) -> Path | None:
    """Where the installed package keeps portrait ``name`` (without importing the package)."""
    package, inner, _, _ = PORTRAITS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / inner
        if path.is_file():
            return path
    return None


def camera_frame(rgb: np.ndarray, shift: int = 0) -> Frame:
    """The portrait as a 1280x720 BGR camera frame (in memory only); ``shift`` moves it sideways."""
    h, w = 720, 1280
    scale = 600 / max(rgb.shape[:2])
    face = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)))
    image = np.full((h, w, 3), 70, dtype=np.uint8)
    y, x = (h - face.shape[0]) // 2, (w - face.shape[1]) // 2 + shift
    image[y : y + face.shape[0], x : x + face.shape[1]] = face[:, :, ::-1]
    return Frame(image=image, timestamp=0.0)


def run_face_demo(rush: Any, device_dir: Path, absent: list[str], badges: dict[str, str]) -> FaceDemo:
    """Late ``qr+face`` arrivals of three absent children through ``rush``'s gate (see the module doc)."""
    from terminal.badge import encode_badge  # noqa: PLC0415
    from terminal.face.check import FaceCheck  # noqa: PLC0415
    from terminal.face.enrol import template_from_photo  # noqa: PLC0415
    from terminal.face.errors import FaceModelsMissing  # noqa: PLC0415
    from terminal.face.images import load_rgb  # noqa: PLC0415
    from terminal.face.templates import open_templates, prune_for_roster  # noqa: PLC0415

    paths = {name: portrait_path(name) for name in PORTRAITS}
    missing = [PORTRAITS[n][0] for n, p in paths.items() if p is None]
    if missing:
        return FaceDemo(
            skipped=f"install {' and '.join(missing)} for the faces demo (pip install -e '.[demo]')"
        )
    consenting = {c.id for c in rush.roster.children() if c.consent_face}
    yes = [child for child in absent if child in consenting]
    no = [child for child in absent if child not in consenting]
    if len(yes) < 2 or not no:
        return FaceDemo(skipped="too few absent children with and without consent: no late arrivals to show")
    try:
        from terminal.face.pipeline import FacePipeline  # noqa: PLC0415

        pipeline = FacePipeline()
    except FaceModelsMissing as exc:
        return FaceDemo(skipped=str(exc))
    # Consent came with the roster the register delivered (the parents' written consent, imported as CSV).
    (a, b), c = yes[:2], no[0]
    prune_for_roster(device_dir / "roster.db", rush.roster.children(), device_dir / "face.key")
    result = FaceDemo()
    faces = {name: load_rgb(path) for name, path in paths.items() if path is not None}
    with open_templates(device_dir / "faces.db", device_dir / "face.key") as store:
        for child, name in ((a, "astronaut"), (b, "hopper")):
            store.add(child, [template_from_photo(pipeline, faces[name], PORTRAITS[name][2])])
            result.enrolled.append(child)
        check = FaceCheck(pipeline, store, monotonic=lambda: 0.0)
        rush.gate.face_check = check
        try:
            for label, child, name in (
                ("face-accepted", a, "astronaut"),
                ("face-badge-mismatch", b, "astronaut"),
                ("face-no-consent-badge-only", c, "astronaut"),
            ):
                rush.clock.advance(90)
                frames = [camera_frame(faces[name], shift) for shift in (0, 24)]
                for frame in frames:
                    check.observe(frame.image)
                outcome = rush.gate.handle_code(encode_badge(badges[child]).encode())
                kind = str(outcome.kind)
                evidence = outcome.decision.evidence if outcome.decision else {}
                if kind == "accepted" and evidence.get("face_method") == 3:
                    result.accepted_with_face += 1
                elif kind == "accepted":
                    result.badge_only += 1
                elif kind == "refused":
                    result.refused_mismatch += 1
                if kind == "accepted":
                    rush.arrived.add(child)
                    rush.today.record(child, outcome.decision.direction, rush.decider.now())
                rush.saved.discard(label)
                rush._screenshot(label, frames[-1])
                result.screens += [f"{label}-{lang}.png" for lang in rush.LANGS]
        finally:
            rush.gate.face_check = None
    return replace(result)
