"""The demo's evening: departures through the gate with pickup policy ``guardian``.

Each child leaves with one of their guardians: the guardian's badge and the child's badge are shown
together (either order, a few seconds apart) and the real :class:`~terminal.gate.Gate` with a
:class:`~terminal.pickup.Pickup` decides; the ``out`` entry names the guardian as evidence. Once, the
guardian of another child tries to take a child: refused on screen, a ``rejected`` entry, an alert on
the staff list; then the child's own guardian comes. That attempt (and the first pickup) go through the
camera path (photo -> ReplaySource -> ScanPipeline) for the screenshots; the rest hand the badge bytes to
:meth:`Gate.handle_code`, as the scanner would. Used by :mod:`kgate.demo`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from kgate import simulation
from kgate.rush import MorningRush
from kgate.trust_demo import Guardian

if TYPE_CHECKING:
    from hardware.camera import Frame
    from terminal.gate import Outcome

PICKUP_WINDOW_S = 30.0


@dataclass
class EveningStats:
    """The evening in numbers, for the demo's summary."""

    checked_out: int = 0
    with_guardian: int = 0
    pickups_refused: int = 0
    prompts: int = 0
    not_picked_up: int = 0


class Evening:
    """Departures with guardian pickup on the morning's gate, roster, ledger and staff list."""

    def __init__(self, rush: MorningRush, adults: list[Guardian], badges: dict[str, str], seed: int) -> None:
        from terminal.pickup import Pickup, PickupPolicy  # noqa: PLC0415

        self.rush = rush
        self.badges = badges
        self.seed = seed
        self.by_child: dict[str, list[Guardian]] = {}
        for g in adults:
            for child in g.children:
                self.by_child.setdefault(child, []).append(g)
        self.adults = adults
        rush.gate.pickup = Pickup(rush.roster, PickupPolicy("guardian", window_seconds=PICKUP_WINDOW_S))
        self.stats = EveningStats()
        self._shots = 0

    def run(self, departures: list[tuple[datetime, simulation.Child]]) -> EveningStats:
        """Every departure of a child the gate saw arrive; the unauthorized adult comes halfway through."""
        rng = random.Random(f"evening-{self.seed}")  # noqa: S311 - a seeded simulation
        leaving = [(when, child) for when, child in departures if child.child_id in self.rush.arrived]
        intruder_at = len(leaving) // 2
        for n, (when, child) in enumerate(leaving):
            self.rush._at(when)
            own = self.by_child.get(child.child_id, [])
            if n == intruder_at:
                self._unauthorized(child)
            if not own:
                self.stats.not_picked_up += 1
                continue
            guardian = rng.choice(own)
            outcome = self._pickup(guardian, child, photos=n == 0, child_first=n % 3 == 1)
            decision = outcome.decision
            if str(outcome.kind) == "accepted" and decision is not None and decision.direction is not None:
                self.stats.checked_out += 1
                self.stats.with_guardian += "guardian" in decision.evidence
                self.rush.today.record(child.child_id, decision.direction, when)
            else:
                self.stats.not_picked_up += 1
        self.rush.save_today("today-evening")
        return self.stats

    def _pickup(
        self, guardian: Guardian, child: simulation.Child, *, photos: bool, child_first: bool
    ) -> Outcome:
        """Both badges, a few seconds apart; the outcome of the second one."""
        shown = [(guardian.serial, guardian.name), (self.badges[child.child_id], child.name)]
        if child_first:
            shown.reverse()
        first = self._show(*shown[0], photos=photos, label=None)
        self.stats.prompts += str(first.kind) == "pending"
        self.rush.clock.advance(3.0)
        return self._show(*shown[1], photos=photos, label="pickup-out" if photos else None)

    def _unauthorized(self, child: simulation.Child) -> None:
        """The guardian of another child shows their badge, then this child's: refused and logged."""
        from terminal.decide import Reason  # noqa: PLC0415

        own = {g.guardian_id for g in self.by_child.get(child.child_id, [])}
        stranger = next(g for g in self.adults if g.guardian_id not in own)
        self._show(stranger.serial, stranger.name, photos=True, label=None)
        self.rush.clock.advance(4.0)
        outcome = self._show(
            self.badges[child.child_id], child.name, photos=True, label="refused-pickup_unauthorized"
        )
        decision = outcome.decision
        if decision is not None and decision.reason is Reason.PICKUP_UNAUTHORIZED:
            self.stats.pickups_refused += 1
            self.rush.today.alert(child.child_id, str(decision.reason), decision.at)
        self.rush.clock.advance(120.0)  # the teacher steps in; the child's own guardian arrives

    def _show(self, serial: str, name: str, *, photos: bool, label: str | None) -> Outcome:
        """One badge at the gate: photographed and scanned, or its bytes as the scanner hands them over."""
        from terminal.badge import encode_badge  # noqa: PLC0415

        payload = encode_badge(serial)
        if not photos:
            return self.rush.gate.handle_code(payload.encode("ascii"))
        frame = self._photo(payload, name)
        outcome = self.rush.gate.handle(self.rush.pipeline.scan(frame))
        if str(outcome.kind) == "idle":  # an easy shot is always read; keep the story going regardless
            outcome = self.rush.gate.handle_code(payload.encode("ascii"))
        if label is not None:
            self.rush._screenshot(label, frame)
        return outcome

    def _photo(self, payload: str, name: str) -> Frame:
        """A steady photo of the badge, replayed as a camera frame."""
        from hardware.camera import ReplaySource  # noqa: PLC0415
        from hardware.camera.synthetic import draw_shot, render_badge_photo  # noqa: PLC0415

        self._shots += 1
        seed = self.seed * 7_000_003 + self._shots
        shot = replace(draw_shot(random.Random(seed), 0.1), width=1280, height=720)  # noqa: S311
        path = self.rush.photos / f"evening-{self._shots:03d}.jpg"
        path.write_bytes(render_badge_photo(payload, name, seed, shot=shot).jpeg)
        with ReplaySource([path]) as camera:
            return camera.read()


def departures(visits: list[simulation.Visit]) -> list[tuple[datetime, simulation.Child]]:
    """The day's departures in time order."""
    return [(when, child) for when, kind, child in simulation.events(visits) if kind == "out"]
