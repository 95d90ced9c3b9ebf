"""Mode ``face``: check-in by face alone (1:N among this kindergarten's consenting children).

Every camera frame goes through :meth:`FaceCheckin.observe`: the cheap part (HOG on the small stream,
5 landmarks, pose and size) runs on each frame via :meth:`FaceCheck.observe`; only when ``frames``
usable faces were seen within the check's window (the frames the liveness check needs) does it run
:func:`~terminal.face.check.identify_child`, which computes one descriptor (not one per frame). After
each identification the check-in rests for ``cooldown`` seconds, so a child standing at the gate costs
one descriptor per cooldown, not one per frame; the decider's debounce turns a repeat into "already in".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from terminal.face.check import FaceCheck, FaceIdentity, identify_child
from terminal.roster import Child

#: Usable faces of one person needed before identifying: the liveness check compares their landmarks.
FRAMES = 3
#: Seconds without a new identification after one (about the time a result card stays up).
COOLDOWN = 3.0


@dataclass(frozen=True)
class FaceResult:
    """One identification: the identity decision and, when recognised, the roster's child."""

    identity: FaceIdentity
    child: Child | None


class FaceCheckin:
    """Decides when a face at the gate is ready to be identified, and identifies it.

    ``children``: the roster's children now (re-read at each identification, so a new roster counts at
    once); only those with ``consent_face`` are candidates.
    """

    def __init__(
        self,
        check: FaceCheck,
        children: Callable[[], Iterable[Child]],
        *,
        frames: int = FRAMES,
        cooldown: float = COOLDOWN,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.check = check
        self.children = children
        self.frames = frames
        self.cooldown = cooldown
        self._monotonic = monotonic
        self._rest_until = -float("inf")

    def observe(self, image: npt.NDArray[np.uint8], *, bgr: bool = True) -> FaceResult | None:
        """Look at one frame; a :class:`FaceResult` when a check-in was decided, else ``None``."""
        now = self._monotonic()
        if now < self._rest_until:
            return None
        if self.check.observe(image, bgr=bgr) is None:
            return None
        if sum(1 for s in self.check.recent() if s.face.problem is None) < self.frames:
            return None
        consenting = {c.id: c for c in self.children() if c.consent_face}
        identity = identify_child(self.check, consenting)
        self._rest_until = now + self.cooldown
        return FaceResult(identity, consenting.get(identity.child_id or ""))

    def close(self) -> None:
        """Close the face check's template store."""
        self.check.close()
