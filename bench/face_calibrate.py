"""Threshold calibration on ``../shared/data/faces``: false accepts / false rejects per threshold (JSON).

Genuine pairs are two photos of the same labelled person that are not copies or crops of one photo
(``dup_group``); impostor pairs are photos of two different people. Descriptors come from the gate's own
pipeline (one jitter, the identify quality policy), or with ``--raw`` from raw dlib's chain (landmarks and
descriptor on the 320x240 downscale, largest detection), to compare the two.

    .venv/bin/python bench/face_calibrate.py [--raw] [FACES_DIR]
"""

from __future__ import annotations

import functools
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from terminal.face.images import load_rgb
from terminal.face.pipeline import IDENTIFY_QUALITY, FacePipeline

THRESHOLDS = (0.40, 0.45, 0.50, 0.55, 0.60, 0.65)


@functools.cache
def raw_models() -> tuple[Any, Any, Any]:
    """dlib's detector, 5-point predictor and ResNet, loaded once."""
    import dlib

    from terminal.face.models import LANDMARKS_5, RESNET, model_path

    return (
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(str(model_path(LANDMARKS_5))),
        dlib.face_recognition_model_v1(str(model_path(RESNET))),
    )


def raw_descriptor(rgb: np.ndarray) -> np.ndarray | None:
    """Raw dlib's chain: everything on the 320x240-area downscale, the largest detection."""
    import cv2

    detector, sp, net = raw_models()
    scale = min(1.0, (320 * 240 / (rgb.shape[0] * rgb.shape[1])) ** 0.5)
    size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    dets = sorted(detector(small, 1), key=lambda d: d.area(), reverse=True)
    if not dets:
        return None
    return np.asarray(net.compute_face_descriptor(small, sp(small, dets[0]), 1), dtype=np.float32)


def main() -> int:
    args = [a for a in sys.argv[1:] if a != "--raw"]
    raw = "--raw" in sys.argv[1:]
    faces = Path(args[0]) if args else ROOT.parent / "shared" / "data" / "faces"
    rows = [json.loads(line) for line in (faces / "manifest.jsonl").read_text().splitlines()]
    pipeline = None if raw else FacePipeline()
    described = []
    for row in rows:
        if not row["identity"]:
            continue
        rgb = load_rgb(faces / row["file"])
        if pipeline is None:
            vector = raw_descriptor(rgb)
        else:
            face = pipeline.analyse(rgb, IDENTIFY_QUALITY).best
            vector = None if face is None else face.descriptor
        if vector is not None:
            described.append((row["identity"], row["dup_group"], vector))
    genuine, impostor = [], []
    for (ida, dupa, va), (idb, dupb, vb) in itertools.combinations(described, 2):
        d = float(np.linalg.norm(va - vb))
        if ida != idb:
            impostor.append(d)
        elif not (dupa and dupa == dupb):
            genuine.append(d)
    gen, imp = np.array(genuine), np.array(impostor)
    table = [
        {
            "threshold": t,
            "false_reject": round(float((gen >= t).mean()), 4),
            "false_rejects": int((gen >= t).sum()),
            "false_accept": round(float((imp < t).mean()), 5),
            "false_accepts": int((imp < t).sum()),
        }
        for t in THRESHOLDS
    ]
    print(
        json.dumps(
            {
                "chain": "raw dlib" if raw else "kgate",
                "described": len(described),
                "genuine_pairs": len(genuine),
                "impostor_pairs": len(impostor),
                "max_genuine": round(float(gen.max()), 4),
                "min_impostor": round(float(imp.min()), 4),
                "table": table,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
