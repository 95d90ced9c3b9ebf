"""Face benchmark: ``qr+face`` 1:1 check-ins and 1:N over 500 enrolled, beside raw dlib's chain, as JSON.

Probes are single-face photos of ``../shared/data/faces`` letterboxed into 1280x720 camera frames; each
person's first photo is enrolled, the others are checked in with that person's badge. The raw-dlib
baseline runs in the same process on the same frames, interleaved with ours (so CPU contention from
other work hits both alike): RGB downscale to 320x240, HOG (upsample 1), 5 landmarks and a 1-jitter
descriptor for every detection, then the distance to the child's templates.

- ``verify_ms``: what a check-in waits for once the badge is read (detection already ran on the stream).
- ``chain_ms``: detection of that frame + verify: the same work as raw dlib's chain, for the 1.1x bar.

    .venv/bin/python bench/face.py [--rounds 3] [--enrolled 500]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from terminal.decide import Decision
from terminal.face.check import FaceCheck, FaceMethod
from terminal.face.images import load_rgb
from terminal.face.match import THRESHOLD, Gallery
from terminal.face.models import LANDMARKS_5, RESNET, model_path
from terminal.face.pipeline import FacePipeline
from terminal.face.templates import open_templates
from terminal.roster import Child

FACES = Path(os.environ.get("KGATE_SHARED", ROOT.parent / "shared")) / "data" / "faces"
FRAME = (1280, 720)


def camera_frame(rgb: np.ndarray) -> np.ndarray:
    """The photo letterboxed into a 1280x720 frame, as a gate camera would deliver it."""
    w, h = FRAME
    scale = min(w / rgb.shape[1], h / rgb.shape[0])
    resized = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)))
    frame = np.full((h, w, 3), 90, dtype=np.uint8)
    y, x = (h - resized.shape[0]) // 2, (w - resized.shape[1]) // 2
    frame[y : y + resized.shape[0], x : x + resized.shape[1]] = resized
    return frame


class RawDlib:
    """dlib's chain as its examples write it, on the 320x240 downscale."""

    def __init__(self) -> None:
        import dlib

        self.detector = dlib.get_frontal_face_detector()
        self.sp = dlib.shape_predictor(str(model_path(LANDMARKS_5)))
        self.net = dlib.face_recognition_model_v1(str(model_path(RESNET)))

    def verify(self, rgb: np.ndarray, templates: np.ndarray) -> float | None:
        small = cv2.resize(rgb, (320, 240), interpolation=cv2.INTER_AREA)
        best = None
        for det in self.detector(small, 1):
            shape = self.sp(small, det)
            vec = np.array(self.net.compute_face_descriptor(small, shape, 1))
            d = float(np.linalg.norm(templates - vec, axis=1).min())
            best = d if best is None else min(best, d)
        return best


def ours(check: FaceCheck, frame: np.ndarray, decision: Decision) -> tuple[str, tuple[Any, ...]]:
    """One qr+face check-in: (verify ms, chain ms, outcome name)."""
    t0 = time.perf_counter()
    check.observe(frame, bgr=False)
    t1 = time.perf_counter()
    result = check.verify(decision)
    t2 = time.perf_counter()
    method = FaceMethod(int(result.evidence["face_method"])).name.lower()
    return "ours", ((t2 - t1) * 1000, (t2 - t0) * 1000, method)


def baseline(raw: RawDlib, frame: np.ndarray, templates: np.ndarray) -> tuple[str, tuple[Any, ...]]:
    """One raw-dlib check-in: (ms, best distance or None)."""
    t0 = time.perf_counter()
    d = raw.verify(frame, templates)
    return "raw", ((time.perf_counter() - t0) * 1000, d)


def people() -> dict[str, list[Path]]:
    """Single-face labelled photos per person (one per dup_group), people with at least 2."""
    by: dict[str, list[Path]] = defaultdict(list)
    seen: set[str] = set()
    for line in (FACES / "manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        if not row["identity"] or row.get("expected_faces") != 1:
            continue
        if row["dup_group"]:
            if row["dup_group"] in seen:
                continue
            seen.add(row["dup_group"])
        by[row["identity"]].append(FACES / row["file"])
    return {k: v for k, v in sorted(by.items()) if len(v) >= 2}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 1), "p95": pct(values, 0.95), "n": len(values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="passes over the probe frames")
    parser.add_argument("--enrolled", type=int, default=500, help="children enrolled for the 1:N timing")
    parser.add_argument("--probes", type=int, default=40, help="check-in frames per round")
    args = parser.parse_args()
    pipeline, raw = FacePipeline(), RawDlib()
    cast = people()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_templates(Path(tmp) / "faces.db", Path(tmp) / "face.key")
        probes: list[tuple[str, np.ndarray]] = []
        templates: dict[str, np.ndarray] = {}
        for person, photos in cast.items():
            face = pipeline.analyse(load_rgb(photos[0])).best
            if face is None or face.descriptor is None:
                continue
            store.add(person, [face.descriptor])
            templates[person] = face.descriptor.reshape(1, 128)
            probes += [(person, camera_frame(load_rgb(p))) for p in photos[1:]]
        probes = probes[: args.probes]
        check = FaceCheck(pipeline, store)
        check.gallery()  # decrypt once, as the running gate does
        ours_verify: list[float] = []
        ours_chain: list[float] = []
        raw_chain: list[float] = []
        outcomes: dict[str, int] = defaultdict(int)
        raw_right = 0
        for r in range(args.rounds):
            for i, (person, frame) in enumerate(probes):
                decision = Decision(at=None, accepted=True, child=Child(person, person, "g", True))  # type: ignore[arg-type]

                for which in ("ours", "raw") if (i + r) % 2 == 0 else ("raw", "ours"):
                    if which == "ours":
                        kind, value = ours(check, frame, decision)
                    else:
                        kind, value = baseline(raw, frame, templates[person])
                    if kind == "raw":
                        raw_chain.append(value[0])
                        raw_right += r == 0 and value[1] is not None and value[1] < THRESHOLD
                    else:
                        ours_verify.append(value[0])
                        ours_chain.append(value[1])
                        outcomes[str(value[2])] += r == 0
        # 1:N over N enrolled children: one real gallery row per cast member, the rest random unit vectors.
        rng = np.random.default_rng(5)
        fill = rng.normal(size=(args.enrolled, 128)).astype(np.float32)
        fill /= np.linalg.norm(fill, axis=1, keepdims=True) * 2.0
        labels = [f"child-{n:04d}" for n in range(args.enrolled)]
        big = Gallery(labels, fill)
        small = Gallery(["one"], fill[:1])
        probe = fill[7] + 0.01
        one_to_n, one_to_one = [], []
        for _ in range(200):
            t0 = time.perf_counter()
            big.identify(probe)
            t1 = time.perf_counter()
            small.verify("one", probe)
            t2 = time.perf_counter()
            one_to_n.append((t1 - t0) * 1000)
            one_to_one.append((t2 - t1) * 1000)
        store.close()
    result: dict[str, Any] = {
        "probes": len(probes),
        "rounds": args.rounds,
        "frame": list(FRAME),
        "qr_face_verify_ms": summary(ours_verify),
        "qr_face_chain_ms": summary(ours_chain),
        "raw_dlib_chain_ms": summary(raw_chain),
        "chain_ratio_p95": round(pct(ours_chain, 0.95) / pct(raw_chain, 0.95), 3),
        "chain_ratio_median": round(statistics.median(ours_chain) / statistics.median(raw_chain), 3),
        "outcomes_first_round": dict(outcomes),
        "raw_dlib_matched_first_round": raw_right,
        "one_to_n": {
            "enrolled": args.enrolled,
            "identify_ms": summary(one_to_n),
            "verify_1to1_ms": summary(one_to_one),
            "added_p95_ms": round(pct(one_to_n, 0.95) - pct(one_to_one, 0.95), 3),
        },
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
