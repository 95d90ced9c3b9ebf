"""Run INSIDE the test target as a oneshot copy of kgate-terminal.service (test_provision.py).

Loads and exercises every native library the terminal uses (OpenCV, zxing-cpp, pyzbar through ctypes,
dlib with its face models) and proves ``MemoryDenyWriteExecute=`` is really enforced (a W+X mapping is
refused). Writes the result as JSON to ``/var/lib/kgate/mdwe-check.json`` (the unit's state directory).
"""

from __future__ import annotations

import json
import mmap
import sys
from pathlib import Path
from typing import Any

OUT = Path("/var/lib/kgate/mdwe-check.json")


def main() -> int:
    import cv2
    import dlib
    import face_recognition_models
    import numpy as np
    import segno
    import zxingcpp
    from PIL import Image
    from pyzbar import pyzbar

    result: dict[str, Any] = {}
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        result["wx_mapping_refused"] = False
    except OSError:
        result["wx_mapping_refused"] = True
    qr = segno.make_qr("KG1-MDWE", error="m")  # not a Micro QR: zbar reads only full QR
    Path("/tmp/qr.png").parent.mkdir(exist_ok=True)
    qr.save("/tmp/qr.png", scale=8, border=4)  # PrivateTmp=yes: the unit's own /tmp
    gray = cv2.imread("/tmp/qr.png", cv2.IMREAD_GRAYSCALE)
    result["opencv"] = gray is not None and cv2.resize(gray, None, fx=0.5, fy=0.5).shape[0] > 0
    result["zxing"] = [b.text for b in zxingcpp.read_barcodes(gray)]
    result["pyzbar"] = [s.data.decode() for s in pyzbar.decode(Image.open("/tmp/qr.png"))]
    rgb = np.zeros((200, 200, 3), np.uint8)
    result["dlib_hog"] = len(dlib.get_frontal_face_detector()(rgb, 0))
    shape = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())(
        rgb, dlib.rectangle(20, 20, 180, 180)
    )
    net = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
    result["dlib_descriptor"] = len(net.compute_face_descriptor(rgb, shape))
    OUT.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
