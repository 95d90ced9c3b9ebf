"""Threshold calibration on ``../shared/data/faces``: false accepts / false rejects per threshold (JSON).

Genuine pairs are two photos of the same labelled person that are not copies or crops of one photo
(``dup_group``); impostor pairs are photos of two different people. Descriptors come from the gate's own
pipeline (one jitter, the identify quality policy). Run: ``.venv/bin/python bench/face_calibrate.py``.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from terminal.face.images import load_rgb
from terminal.face.pipeline import IDENTIFY_QUALITY, FacePipeline

THRESHOLDS = (0.40, 0.45, 0.50, 0.55, 0.60, 0.65)


def main() -> int:
    faces = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "faces"
    rows = [json.loads(line) for line in (faces / "manifest.jsonl").read_text().splitlines()]
    pipeline = FacePipeline()
    described = []
    for row in rows:
        if not row["identity"]:
            continue
        face = pipeline.analyse(load_rgb(faces / row["file"]), IDENTIFY_QUALITY).best
        if face is not None and face.descriptor is not None:
            described.append((row["identity"], row["dup_group"], face.descriptor))
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
