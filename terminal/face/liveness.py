"""A cheap passive liveness cue: non-rigid motion of the 5 landmarks across the frames of one check-in.

A photo or a screen moved in front of the camera moves its landmarks *rigidly* (shift, rotation,
scale); a live face also changes shape a little (eyes, expression, head turning in depth). For each
frame the landmarks are aligned to the first frame's by the best similarity transform (Procrustes);
the score is the largest remaining deviation in eye distances. It stops a still photo held still or
slid across the camera; it cannot stop a video replayed on a screen, a photo bent or tilted in depth,
or a mask. See docs/faces.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

#: Below this score (in eye distances) the check-in looks like a rigid picture. Measured (docs/faces.md):
#: resampling and JPEG noise alone reach 0.013; two photos of one person 0.057-0.19.
LIVENESS_MIN = 0.03


def nonrigid_motion(frames: Sequence[npt.NDArray[np.float64]]) -> float:
    """Largest residual landmark motion after similarity alignment, in eye distances (0: < 2 frames)."""
    if len(frames) < 2:
        return 0.0
    ref = np.asarray(frames[0], dtype=np.float64)
    ref_c = ref - ref.mean(axis=0)
    eye = float(np.linalg.norm(ref[0:2].mean(axis=0) - ref[2:4].mean(axis=0))) or 1.0
    worst = 0.0
    for pts in frames[1:]:
        cur = np.asarray(pts, dtype=np.float64)
        cur_c = cur - cur.mean(axis=0)
        # Similarity Procrustes: rotation + uniform scale that best maps cur_c onto ref_c.
        u, s, vt = np.linalg.svd(cur_c.T @ ref_c)
        rot = u @ vt
        if np.linalg.det(rot) < 0:
            u[:, -1] *= -1
            rot = u @ vt
        denom = float((cur_c**2).sum()) or 1.0
        scale = float(s.sum()) / denom
        residual = np.linalg.norm(cur_c @ rot * scale - ref_c, axis=1).max()
        worst = max(worst, float(residual) / eye)
    return worst
