"""The face check of modes ``qr+face`` (1:1 with the badge's child) and ``face`` (1:N, margin rule).

The frame loop hands every frame to :meth:`FaceCheck.observe`, which runs only the cheap part (HOG on
the small stream and 5 landmarks) and keeps the last few faces *in memory* (never on disk). When a badge
is accepted by the decider, :meth:`FaceCheck.verify` computes one descriptor from the best recent face
(the expensive ResNet runs once per check-in, not per frame) and turns the decision into:

- the badge's child has no face consent, or no templates: accepted on the badge alone, and the entry
  says so (``face_method`` 1 or 2);
- the face matches the child's templates: accepted (``face_method`` 3);
- it does not, or no usable face was seen: refused, ``rejected`` entry with the evidence (4 / 5).

Evidence values are integers (ledger entries allow int/str/bool/bytes): distances and margins in
thousandths, the liveness score in thousandths of an eye distance, and the template set's 48-bit
version hash. Never a template, never an image.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from enum import IntEnum
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from terminal.decide import Decision, Reason
from terminal.face.liveness import LIVENESS_MIN, nonrigid_motion
from terminal.face.match import MARGIN, THRESHOLD, THRESHOLD_1N, Gallery
from terminal.face.pipeline import GATE_QUALITY, Face, FacePipeline
from terminal.face.templates import TemplateStore


class FaceMethod(IntEnum):
    """``face_method`` evidence: how the child's presence was established."""

    BADGE_NO_CONSENT = 1
    BADGE_NO_TEMPLATES = 2
    FACE_MATCH = 3
    FACE_MISMATCH = 4
    NO_USABLE_FACE = 5


@dataclass
class _Seen:
    rgb: npt.NDArray[np.uint8]
    face: Face
    at: float


class FaceCheck:
    """1:1 verification for ``qr+face``. ``window``: seconds a seen face counts for a check-in."""

    def __init__(
        self,
        pipeline: FacePipeline,
        store: TemplateStore,
        *,
        threshold: float = THRESHOLD,
        history: int = 6,
        window: float = 3.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        self.threshold = threshold
        self.window = window
        self._monotonic = monotonic
        self._seen: deque[_Seen] = deque(maxlen=history)
        self._gallery: Gallery | None = None
        self._version: int | None = None

    # -- the frame loop -------------------------------------------------------------------------------
    def observe(self, image: npt.NDArray[np.uint8], *, bgr: bool = True) -> Face | None:
        """Detect the largest face of a camera frame (cheap part only) and remember it for a few seconds."""
        rgb: npt.NDArray[np.uint8] = np.ascontiguousarray(
            cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if bgr and image.ndim == 3 else image, dtype=np.uint8
        )
        now = self._monotonic()
        while self._seen and not 0 <= now - self._seen[0].at <= self.window:
            self._seen.popleft()  # frames older than the window leave memory with the next frame
        faces = self.pipeline.detect(rgb, GATE_QUALITY)
        if not faces:
            return None
        self._seen.append(_Seen(rgb, faces[0], now))
        return faces[0]

    def close(self) -> None:
        """Close the template store."""
        self.store.close()

    def clear(self) -> None:
        """Forget the frames of the last check-in (called after every decision)."""
        self._seen.clear()

    def recent(self) -> list[_Seen]:
        """The faces seen within ``window`` seconds, oldest first."""
        now = self._monotonic()
        return [s for s in self._seen if 0 <= now - s.at <= self.window]

    def gallery(self) -> tuple[Gallery, int]:
        """The decrypted templates, reloaded only when the template set changed."""
        version = self.store.version()
        if self._gallery is None or version != self._version:
            self._gallery, self._version = self.store.gallery(), version
        return self._gallery, version

    # -- at a check-in ---------------------------------------------------------------------------------
    def verify(self, decision: Decision) -> Decision:
        """The decision after the 1:1 face check (only accepted decisions with a child are checked)."""
        child = decision.child
        if not decision.accepted or child is None:
            return decision
        try:
            if not child.consent_face:
                return self._with(decision, FaceMethod.BADGE_NO_CONSENT)
            gallery, version = self.gallery()
            if not gallery.has(child.id):
                return self._with(decision, FaceMethod.BADGE_NO_TEMPLATES, face_set=version)
            recent = self.recent()
            liveness = round(nonrigid_motion([s.face.landmarks for s in recent]) * 1000)
            usable = [s for s in reversed(recent) if s.face.problem is None]
            for seen in usable[:2]:  # the newest usable face; one more if it turns out blurred
                vector = self.pipeline.describe(seen.rgb, seen.face, GATE_QUALITY)
                if vector is None:
                    continue
                match = gallery.verify(child.id, vector, self.threshold)
                evidence = {
                    "face_dist": round((match.distance or 0.0) * 1000),
                    "face_margin": round((match.margin or 0.0) * 1000),
                    "liveness": liveness,
                    "face_set": version,
                }
                if match.identity == child.id:
                    return self._with(decision, FaceMethod.FACE_MATCH, **evidence)
                return self._refuse(decision, FaceMethod.FACE_MISMATCH, **evidence)
            return self._refuse(decision, FaceMethod.NO_USABLE_FACE, liveness=liveness, face_set=version)
        finally:
            self.clear()

    @staticmethod
    def _with(decision: Decision, method: FaceMethod, **evidence: int) -> Decision:
        merged = {**decision.evidence, "face_method": int(method), **evidence}
        badge_only = method in (FaceMethod.BADGE_NO_CONSENT, FaceMethod.BADGE_NO_TEMPLATES)
        return replace(decision, method="qr" if badge_only else "qr+face", evidence=merged)

    @classmethod
    def _refuse(cls, decision: Decision, method: FaceMethod, **evidence: int) -> Decision:
        refused = cls._with(decision, method, **evidence)
        reason = Reason.NO_FACE if method is FaceMethod.NO_USABLE_FACE else Reason.FACE_MISMATCH
        return replace(refused, accepted=False, reason=reason, log_rejected=True)


@dataclass(frozen=True)
class FaceIdentity:
    """Mode ``face`` (1:N): the recognised child (``None`` when refused), why not, and the evidence."""

    child_id: str | None
    reason: str | None
    evidence: dict[str, int]


def identify_child(
    check: FaceCheck,
    consenting: Iterable[str],
    *,
    threshold: float = THRESHOLD_1N,
    margin: float = MARGIN,
    liveness_min: float = LIVENESS_MIN,
) -> FaceIdentity:
    """1:N among the *consenting* children only, with the margin rule, from the faces seen recently.

    Refused (``child_id`` ``None``) when no usable face was seen, no child is close enough, two children
    are too close to call, or the liveness check failed: in this mode a failed check never accepts.
    """
    try:
        gallery_all, version = check.gallery()
        allowed = set(consenting)
        rows = [i for i, label in enumerate(gallery_all.labels) if label in allowed]
        gallery = Gallery([gallery_all.labels[i] for i in rows], gallery_all.matrix[rows])
        recent = check.recent()
        motion = nonrigid_motion([s.face.landmarks for s in recent])
        evidence = {
            "face_method": int(FaceMethod.NO_USABLE_FACE),
            "liveness": round(motion * 1000),
            "face_set": version,
        }
        for seen in [s for s in reversed(recent) if s.face.problem is None][:2]:
            vector = check.pipeline.describe(seen.rgb, seen.face, GATE_QUALITY)
            if vector is None:
                continue
            match = gallery.identify(vector, threshold, margin)
            evidence["face_dist"] = round((match.distance or 0.0) * 1000)
            evidence["face_margin"] = round((match.margin if match.margin is not None else 1.0) * 1000)
            if match.identity is None:
                evidence["face_method"] = int(FaceMethod.FACE_MISMATCH)
                return FaceIdentity(None, match.reason, evidence)
            if motion < liveness_min:
                evidence["face_method"] = int(FaceMethod.FACE_MISMATCH)
                return FaceIdentity(None, "liveness", evidence)
            evidence["face_method"] = int(FaceMethod.FACE_MATCH)
            return FaceIdentity(match.identity, None, evidence)
        return FaceIdentity(None, "no_face", evidence)
    finally:
        check.clear()


def open_face_check(roster_db: Path, device_key: Path) -> FaceCheck:
    """The ``qr+face`` check of a terminal: templates in ``faces.db`` beside the roster, key ``face.key``
    beside the device key. Close it with :meth:`FaceCheck.close`."""
    from terminal.face.templates import DB_NAME, KEY_NAME, open_templates  # noqa: PLC0415

    store = open_templates(roster_db.with_name(DB_NAME), device_key.with_name(KEY_NAME))
    try:
        return FaceCheck(FacePipeline(), store)
    except BaseException:
        store.close()
        raise
