"""The demo's morning rush: badge photos through the real terminal pipeline, with screenshots.

Arrivals are photographed (``hardware.camera.synthetic``), replayed by a ``ReplaySource`` into the
``ScanPipeline`` and the ``Gate``, which decides and appends durably; a few unknown, revoked, forged and
hostile codes are refused and the camera is unplugged once. Used by :mod:`kgate.demo`.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hardware.feedback import NullFeedback
from kgate import simulation
from ledger.clock import FakeClock
from ledger.store import Ledger


def badge_serial(child_id: str, seed: int) -> str:
    """A deterministic badge serial per child (real badges use :func:`terminal.badge.new_serial`)."""
    from terminal.badge import serial_from_bytes  # noqa: PLC0415

    return serial_from_bytes(hashlib.sha256(f"demo-badge/{seed}/{child_id}".encode()).digest()[:10])


def write_roster_file(path: Path, kids: list[simulation.Child], badges: dict[str, str], seed: int) -> Path:
    """The kindergarten's roster as ``kgate roster load`` reads it; the first child's old badge is revoked."""
    doc: dict[str, Any] = {
        "version": 1,
        "children": [{"id": c.child_id, "name": c.name, "group": c.group} for c in kids],
        "badges": [{"serial": badges[c.child_id], "child": c.child_id} for c in kids],
    }
    if kids:
        lost = badge_serial(f"lost/{kids[0].child_id}", seed)
        doc["badges"].append({"serial": lost, "child": kids[0].child_id, "revoked": True})
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0–100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, round(q / 100 * len(ordered)))) - 1]


class MorningRush:
    """Arrivals as badge photos through ReplaySource -> ScanPipeline -> Gate -> ledger, with screenshots.

    Each arrival is photographed at a difficulty from :data:`DIFFICULTIES` (in turn); when the gate does
    not react, the parent holds the badge up again a few seconds later, steadier (up to two retries).
    """

    DIFFICULTIES = (0.3, 0.6, 0.95, 0.5, 1.0)
    RETRIES = (0.3, 0.0)
    LANGS = ("kk", "ru", "en")

    def __init__(self, out: Path, ledger: Ledger, roster: Any, clock: FakeClock, seed: int) -> None:
        from terminal.decide import DecideConfig, Decider  # noqa: PLC0415
        from terminal.gate import Gate  # noqa: PLC0415
        from terminal.scan import ScanPipeline  # noqa: PLC0415
        from terminal.screen import GateScreen  # noqa: PLC0415
        from terminal.today import Today  # noqa: PLC0415

        self.photos = out / "rush"
        self.screens = out / "screens"
        self.photos.mkdir(parents=True, exist_ok=True)
        self.screens.mkdir(parents=True, exist_ok=True)
        self.roster = roster
        self.clock = clock
        self.seed = seed
        self.decider = Decider(roster, DecideConfig(timezone="Asia/Almaty"), clock)
        self.gate = Gate(ledger, self.decider, NullFeedback(), GateScreen(), lang="kk")
        self.pipeline = ScanPipeline()
        self.today = Today(
            self.decider.now().astimezone(self.decider.config.tzinfo()).date(), simulation.ALMATY
        )
        self.arrived: set[str] = set()
        self.entry_ms: list[float] = []
        self.saved: set[str] = set()
        self.stats = dict.fromkeys(
            ("photos", "read", "retries", "accepted", "refused", "repeat", "rejected_entries", "not_read",
             "camera_faults"), 0,
        )  # fmt: skip
        self._shots = 0

    # -- the rush --------------------------------------------------------------------------------------
    def run(self, visits: list[simulation.Visit], badges: dict[str, str]) -> None:
        """Every arrival in time order, with hostile codes, one repeat and one camera fault mixed in."""
        from terminal.badge import encode_badge  # noqa: PLC0415
        from terminal.decide import Direction  # noqa: PLC0415

        arrivals = sorted((v.arrive, v.child) for v in visits if v.arrive is not None)
        extras = self._intruders(len(arrivals), badges)
        for n, (when, child) in enumerate(arrivals):
            self._at(when)
            if n == len(arrivals) // 3:
                self._camera_fault(child.name)
            difficulty = self.DIFFICULTIES[n % len(self.DIFFICULTIES)]
            payload = encode_badge(badges[child.child_id])
            if self._present(payload, child.name, difficulty, retries=True) == "accepted":
                self.arrived.add(child.child_id)
                self.today.record(child.child_id, Direction.IN, when)
            else:
                self.stats["not_read"] += 1
            if n == 5:  # a parent shows the badge again: "already checked in", no new entry
                self._at(when + timedelta(seconds=8))
                self._present(payload, child.name, 0.2, retries=False)
            for name, text in extras.get(n, ()):
                self._at(when + timedelta(seconds=20))
                self._present(text, name, 0.3, retries=True)
        self.save_today("today-morning")

    def _intruders(self, count: int, badges: dict[str, str]) -> dict[int, list[tuple[str, str]]]:
        """Codes that must be refused, spread over the rush: unknown, revoked, forged and hostile."""
        from terminal.badge import encode_badge, serial_from_bytes  # noqa: PLC0415

        first = next(iter(badges), "")
        unknown = encode_badge(serial_from_bytes(bytes(range(10))))
        revoked = encode_badge(badge_serial(f"lost/{first}", self.seed))
        forged = unknown[:-1] + ("A" if unknown[-1] != "A" else "B")  # wrong check character
        hostile = "https://evil.example/?q=' OR 1=1;--\x00"
        codes = [
            ("Unknown Child", unknown),
            ("Lost Badge", revoked),
            ("Forged", forged),
            ("Hostile", hostile),
        ]
        spots = [max(0, count * k // (len(codes) + 1)) for k in range(1, len(codes) + 1)]
        return {spot: [code] for spot, code in zip(spots, codes, strict=True)}

    def _at(self, when: datetime) -> None:
        ms = simulation.utc_ms(when)
        if ms > self.clock.time_ms:
            self.clock.advance((ms - self.clock.time_ms) / 1000)

    def _present(self, payload: str, name: str, difficulty: float, *, retries: bool) -> str:
        """Show one badge (and retry while nothing happens); returns the last outcome's kind."""
        kind = self._shoot(payload, name, difficulty)
        if retries:
            for easier in self.RETRIES:
                if kind != "idle":
                    break
                self.stats["retries"] += 1
                self.clock.advance(4.0)
                kind = self._shoot(payload, name, easier)
        return kind

    def _shoot(self, payload: str, name: str, difficulty: float) -> str:
        """Photograph the badge, replay the photo as a camera frame, scan it, and let the gate decide."""
        import random  # noqa: PLC0415

        from hardware.camera import ReplaySource  # noqa: PLC0415
        from hardware.camera.synthetic import draw_shot, render_badge_photo  # noqa: PLC0415
        from terminal.gate import OutcomeKind  # noqa: PLC0415

        self._shots += 1
        seed = self.seed * 1_000_003 + self._shots
        shot = replace(draw_shot(random.Random(seed), difficulty), width=1280, height=720)  # noqa: S311
        path = self.photos / f"{self._shots:04d}.jpg"
        path.write_bytes(render_badge_photo(payload, name, seed, shot=shot).jpeg)
        with ReplaySource([path]) as camera:
            frame = camera.read()
        started = time.perf_counter()
        outcome = self.gate.handle(self.pipeline.scan(frame))
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.stats["photos"] += 1
        kind = str(outcome.kind)
        if kind != "idle":
            self.stats["read"] += 1
        if outcome.kind is OutcomeKind.ACCEPTED:
            self.stats["accepted"] += 1
            self.entry_ms.append(elapsed_ms)
        elif outcome.kind is OutcomeKind.REFUSED:
            self.stats["refused"] += 1
            self.stats["rejected_entries"] += outcome.index is not None
        elif outcome.kind is OutcomeKind.REPEAT:
            self.stats["repeat"] += 1
        reason = outcome.decision.reason if outcome.decision else None
        label = {"accepted": "accepted", "refused": f"refused-{reason}", "repeat": f"repeat-{reason}"}.get(
            kind
        )
        if label is not None:
            self._screenshot(label, frame)
        return kind

    def _camera_fault(self, name: str) -> None:
        """The USB cable is pulled for a moment: the camera-lost screen, nothing acknowledged."""
        from dataclasses import replace as swap  # noqa: PLC0415

        from hardware.camera import ReplaySource  # noqa: PLC0415
        from hardware.errors import CameraLost  # noqa: PLC0415

        camera = ReplaySource([next(self.photos.glob("*.jpg"))])
        camera.open()
        camera.unplug()
        try:
            camera.read()
        except CameraLost:
            self.stats["camera_faults"] += 1
            self.gate.card = None
            self.gate.status = swap(self.gate.status, camera_ok=False)
            self._screenshot("error-camera-lost", None)
        finally:
            camera.close()
            self.gate.status = swap(self.gate.status, camera_ok=True)

    # -- screenshots -------------------------------------------------------------------------------------
    def _screenshot(self, label: str, frame: Any) -> None:
        """The gate screen as it is now, once per label, in each language."""
        if label in self.saved or self.gate.screen is None:
            return
        self.saved.add(label)
        from terminal.service import preview_rgb  # noqa: PLC0415

        preview = None if frame is None else preview_rgb(frame)
        local = self.decider.now().astimezone(self.decider.config.tzinfo()).replace(tzinfo=None)
        for lang in self.LANGS:
            state = self.gate.screen_state(preview)
            card = None if state.card is None else replace(state.card, lang=lang)
            state = replace(state, lang=lang, card=card, status=replace(state.status, clock=local))
            self.gate.screen.render(state).save(self.screens / f"{label}-{lang}.png")

    def save_today(self, label: str) -> None:
        """The staff "today" list in each language."""
        if self.gate.screen is None:
            return
        listing = self.today.today_list(self.roster.children())
        local = self.decider.now().astimezone(self.decider.config.tzinfo()).replace(tzinfo=None)
        status = replace(self.gate.status, clock=local)
        for lang in self.LANGS:
            image = self.gate.screen.render_today(listing, lang, status)
            image.save(self.screens / f"{label}-{lang}.png")
