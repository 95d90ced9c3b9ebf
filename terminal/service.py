"""``kgate terminal run``: the gate's frame loop as a systemd service.

Each frame: camera → :class:`~terminal.scan.ScanPipeline` → :meth:`Gate.handle` (decide, append,
acknowledge only after COMMIT) → :meth:`Gate.render` → display. Talking to systemd (``Type=notify``):
``READY=1`` once the camera delivered its first frame; ``WATCHDOG=1`` from this loop only while frames
arrive, so a hung or stalled camera stops the pings and systemd restarts the service. A lost or stalled
camera puts "camera lost" on the screen and a slow red blink on the LEDs; the loop closes the camera
and reopens it with exponential backoff, and recovers by itself when frames come back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import numpy as np

from hardware.camera import FrameSource, open_camera
from hardware.camera.frame import Frame
from hardware.display import Display, display_backend, open_display
from hardware.errors import CameraNotFound, CameraRetryable, EndOfReplay, UnreadableFrame
from hardware.feedback import InOut, open_feedback
from kgate import __version__
from kgate.sdnotify import Notifier
from ledger.clock import SystemClock
from ledger.store import open_ledger
from terminal.config import GateConfig, TerminalConfig
from terminal.decide import Decider
from terminal.gate import Gate, Outcome, OutcomeKind
from terminal.pickup import Pickup, PickupPolicy
from terminal.roster import Child, open_roster
from terminal.scan import ScanConfig, ScanPipeline
from terminal.screen import GateScreen
from terminal.today import Today, today_from_ledger

if TYPE_CHECKING:
    from terminal.face.check import FaceCheck
    from terminal.face.checkin import FaceCheckin, FaceResult

log = logging.getLogger(__name__)
_HOUSEKEEPING_SECONDS = 10.0  # clock-sync flag, free disk, status file
TODAY_PAGE_SECONDS = 8.0  # the staff "today" list turns a page this often (terminal/screen/today.py)
# A hard frame stops rescuing after this long: at 30 fps the next frame is already waiting (docs/scanning.md).
LIVE_RESCUE_BUDGET_MS = 30.0


@dataclass
class RunStats:
    """What one :meth:`TerminalService.run` did (the demo and tests read it)."""

    frames: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    camera_losses: int = 0
    recoveries: int = 0
    watchdog_pings: int = 0
    ready: bool = False
    entry_ms: list[float] = field(default_factory=list)  # frame read → entry stored, accepted frames


def watchdog_interval(default: float = 1.0) -> float:
    """Seconds between ``WATCHDOG=1`` pings: a third of ``$WATCHDOG_USEC`` when systemd set it."""
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return default
    return usec / 3e6 if usec > 0 else default


def preview_rgb(frame: Frame) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """The frame's preview as the screen wants it: RGB (camera frames are BGR) or grey."""
    preview = frame.preview()
    return preview[:, :, ::-1] if preview.ndim == 3 else preview


class TerminalService:
    """The frame loop. Build it with :func:`open_service`, or from parts (tests, the demo).

    ``retry_initial``/``retry_max``: backoff between camera reopen attempts. ``card_seconds``: how long
    a result card stays up. ``closers``: called on :meth:`close` (ledger, roster, feedback…), last first.
    """

    def __init__(
        self,
        *,
        camera: FrameSource,
        pipeline: ScanPipeline,
        gate: Gate,
        display: Display,
        today: Today,
        children: Callable[[], Sequence[Child]] = list,
        notifier: Notifier | None = None,
        retry_initial: float = 0.5,
        retry_max: float = 10.0,
        card_seconds: float = GateConfig.card_seconds,
        ping_interval: float | None = None,
        status_file: Path | None = None,
        disk_path: Path | None = None,
        clock_synced: Callable[[], bool] | None = None,
        closers: Sequence[Callable[[], None]] = (),
        monotonic: Callable[[], float] = time.monotonic,
        face_checkin: FaceCheckin | None = None,
    ) -> None:
        self.camera = camera
        self.face_checkin = face_checkin  # mode face: check-in by face (badges still work)
        self.pipeline = pipeline
        self.gate = gate
        self.display = display
        self.today = today
        self.children = children
        self.notifier = notifier or Notifier()
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.card_seconds = card_seconds
        self.ping_interval = watchdog_interval() if ping_interval is None else ping_interval
        self.status_file = status_file
        self.disk_path = disk_path
        self.clock_synced = clock_synced
        self._closers = list(closers)
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._camera_ok = True
        self._last_ping = -float("inf")
        self._last_housekeeping = -float("inf")
        self._card: object = None
        self._card_since = 0.0
        self._today_until = 0.0
        self._today_since = 0.0
        self.stats = RunStats()

    # -- control ----------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to finish after the current frame (SIGTERM does this)."""
        self._stop.set()

    def show_today(self, seconds: float = 20.0) -> None:
        """Show the staff "today" list instead of the gate screen for a while.

        Its pages turn every :data:`TODAY_PAGE_SECONDS`; asked again while shown, the next page.
        """
        now = self._monotonic()
        if now < self._today_until:
            self._today_since -= TODAY_PAGE_SECONDS  # one page on
        else:
            self._today_since = now
        self._today_until = now + seconds

    def on_key(self, key: str) -> None:
        """Development window keys: ``i``/``o`` In/Out like the buttons, ``a`` automatic, ``t`` today."""
        choice = {"i": InOut.IN, "o": InOut.OUT}
        if key in choice or key == "a":
            self.gate.feedback.select_direction(choice.get(key))
        elif key == "t":
            self.show_today()

    # -- the loop ---------------------------------------------------------------------------------------
    def run(self, *, max_frames: int | None = None, max_seconds: float | None = None) -> RunStats:
        """Run until :meth:`stop`, the end of a replay, ``max_frames`` more frames or ``max_seconds``."""
        started = self._monotonic()
        first = self.stats.frames
        delay = self.retry_initial
        self.notifier.status("opening the camera")
        while not self._stop.is_set():
            if max_frames is not None and self.stats.frames - first >= max_frames:
                break
            if max_seconds is not None and self._monotonic() - started >= max_seconds:
                break
            try:
                frame = self.camera.read()
            except EndOfReplay:
                log.info("terminal: the replay ended after %d frames", self.stats.frames)
                break
            except UnreadableFrame as exc:
                log.warning("terminal: skipping a frame: %s", exc)
                continue
            except (CameraRetryable, CameraNotFound) as exc:
                self._camera_lost(exc, delay)
                wait = delay
                if max_seconds is not None:
                    wait = max(0.0, min(wait, started + max_seconds - self._monotonic()))
                self._stop.wait(wait)
                delay = min(delay * 2, self.retry_max)
                continue
            delay = self.retry_initial
            self._handle(frame)
        return self.stats

    def _handle(self, frame: Frame) -> None:
        read_at = time.perf_counter()
        self.stats.frames += 1
        if not self.stats.ready:
            self.stats.ready = True
            self.notifier.ready()
            self.notifier.status("gate ready")
            log.info("terminal: camera delivers frames (%dx%d); ready", frame.width, frame.height)
        if not self._camera_ok:
            self._camera_recovered()
        now = self._monotonic()
        if now - self._last_ping >= self.ping_interval:
            self._last_ping = now
            if self.notifier.watchdog():
                self.stats.watchdog_pings += 1
        if self.gate.face_check is not None:  # qr+face: the cheap face detection on every frame
            self.gate.face_check.observe(frame.image)
        if self.face_checkin is not None:  # face: detection every frame, a descriptor when ready
            result = self._face(frame)
            if result is not None:
                self._count(self.gate.handle_face(result), read_at)
        self._count(self.gate.handle(self.pipeline.scan(frame)), read_at)
        self._expire_card(now)
        self._housekeeping(now)
        self._show(preview_rgb(frame))

    def _face(self, frame: Frame) -> FaceResult | None:
        assert self.face_checkin is not None
        try:
            return self.face_checkin.observe(frame.image)
        except Exception:  # e.g. the template key became unreadable: badges must keep working
            log.exception("terminal: face check-in failed")
            return None

    def _count(self, outcome: Outcome, read_at: float) -> None:
        """Statistics, today's list and the log for one outcome of this frame."""
        if outcome.kind is not OutcomeKind.IDLE:
            self.stats.outcomes[outcome.kind] = self.stats.outcomes.get(outcome.kind, 0) + 1
            decision = outcome.decision
            if outcome.kind is OutcomeKind.ACCEPTED and decision is not None:
                self.stats.entry_ms.append((time.perf_counter() - read_at) * 1000)
                if decision.child is not None and decision.direction is not None:
                    self.today.record(decision.child.id, decision.direction, decision.at)
            elif outcome.kind is OutcomeKind.REFUSED and decision is not None and decision.child is not None:
                self.today.alert(decision.child.id, str(decision.reason), decision.at)  # a refused pickup
            log.info("terminal: %s%s", outcome.kind, _describe(outcome))

    def _camera_lost(self, exc: BaseException, retry_in: float) -> None:
        with contextlib.suppress(Exception):
            self.camera.close()
        if self._camera_ok:
            self._camera_ok = False
            self.stats.camera_losses += 1
            log.error("terminal: camera lost: %s (retrying, next in %.1f s)", exc, retry_in)
            self.notifier.status(f"camera lost: {exc}")
            self.gate.card = None
            self.gate.status = replace(self.gate.status, camera_ok=False)
            _safely(self.gate.feedback.fault)
            self._write_status()
        else:
            log.debug("terminal: camera still unavailable: %s", exc)
        self._show(None)

    def _camera_recovered(self) -> None:
        self._camera_ok = True
        self.stats.recoveries += 1
        log.info("terminal: camera is back")
        self.notifier.status("gate ready")
        self.gate.status = replace(self.gate.status, camera_ok=True)
        _safely(self.gate.feedback.clear)
        self._write_status()

    def _expire_card(self, now: float) -> None:
        card = self.gate.card
        if card is not self._card:
            self._card, self._card_since = card, now
        elif card is not None and now - self._card_since >= self.card_seconds:
            self.gate.card = self._card = None

    def _housekeeping(self, now: float) -> None:
        if now - self._last_housekeeping < _HOUSEKEEPING_SECONDS:
            return
        self._last_housekeeping = now
        status = self.gate.status
        if self.clock_synced is not None:
            status = replace(status, clock_synced=self.clock_synced())
        if self.disk_path is not None:
            with contextlib.suppress(OSError):
                usage = shutil.disk_usage(self.disk_path)
                status = replace(status, disk_free_percent=round(100 * usage.free / usage.total, 1))
        self.gate.status = status
        self._write_status()

    def _show(self, preview: np.ndarray[Any, np.dtype[np.uint8]] | None) -> None:
        decider = self.gate.decider
        now = decider.now().astimezone(decider.config.tzinfo()).replace(tzinfo=None)
        self.gate.status = replace(self.gate.status, clock=now)
        screen = self.gate.screen
        if screen is None:
            return
        try:
            if self._monotonic() < self._today_until:
                listing = self.today.today_list(self.children())
                page = int((self._monotonic() - self._today_since) // TODAY_PAGE_SECONDS)
                image = screen.render_today(listing, self.gate.lang, self.gate.status, page)
            else:
                image = screen.render(self.gate.screen_state(preview))
            self.display.show(image)
        except Exception:  # a display hiccup must not stop check-ins
            log.exception("terminal: could not show the screen")

    def _write_status(self) -> None:
        """The small JSON file the sync agent's heartbeat reports to the register."""
        if self.status_file is None:
            return
        data = {
            "roster_version": self.gate.status.roster_version,
            "camera_ok": self._camera_ok,
            "disk_free_percent": self.gate.status.disk_free_percent,
            "software_version": __version__,
        }
        tmp = self.status_file.with_name(self.status_file.name + ".tmp")
        try:
            tmp.write_text(json.dumps(data), encoding="utf-8")
            tmp.replace(self.status_file)
        except OSError as exc:
            log.warning("terminal: cannot write %s: %s", self.status_file, exc)

    # -- shutdown ----------------------------------------------------------------------------------------
    def close(self) -> None:
        """Release the camera, display and everything in ``closers`` (the ledger last)."""
        self.notifier.notify("STOPPING=1")
        for close in (self.camera.close, self.display.close, *reversed(self._closers)):
            try:
                close()
            except Exception:
                log.exception("terminal: error while closing")

    def __enter__(self) -> TerminalService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _describe(outcome: Any) -> str:
    decision = outcome.decision
    if decision is None:
        return f": {outcome.error}" if outcome.error else ""
    who = decision.child.id if decision.child else decision.serial or "-"
    what = decision.direction if decision.accepted else decision.reason
    index = f" #{outcome.index}" if outcome.index is not None else ""
    return f" {who} {what}{index}"


def _safely(call: Callable[[], None]) -> None:
    try:
        call()
    except Exception:
        log.exception("terminal: feedback failed")


def _face_check(config: TerminalConfig, stack: contextlib.ExitStack) -> FaceCheck:
    """The face check of modes ``qr+face`` and ``face`` (docs/faces.md): dlib loads only in these."""
    from terminal.face.check import open_face_check  # noqa: PLC0415 - dlib loads only in face modes

    check = open_face_check(config.roster_path, config.ledger.key)
    stack.callback(check.close)
    return check


def open_service(config: TerminalConfig, *, notifier: Notifier | None = None) -> TerminalService:
    """Open ledger, roster, feedback, screen, display and camera as ``config`` says; restore today."""
    with contextlib.ExitStack() as stack:
        cfg = config.gate
        ledger = open_ledger(config.ledger.path, key_path=config.ledger.key, origin=config.ledger.origin)
        stack.callback(ledger.close)
        roster = open_roster(config.roster_path)
        stack.callback(roster.close)
        feedback = open_feedback(config.feedback)
        stack.callback(feedback.close)
        decider = Decider(roster, cfg.decide)
        tz = cfg.decide.tzinfo()
        today = today_from_ledger(ledger, decider.now().astimezone(tz).date(), tz)
        restored = today.restore_into(decider)
        log.info(
            "terminal: ledger %s (%d entries), %d children seen today", ledger.path, ledger.size, restored
        )
        if roster.version is None:
            log.warning("terminal: no roster loaded (kgate roster load FILE --db %s)", roster.path)
        try:
            ledger.append("boot", evidence={"software": f"kgate {__version__}"})
        except Exception as exc:  # e.g. disk full: the gate shows it on the first check-in
            log.error("terminal: boot entry not stored: %s", exc)
        policy = PickupPolicy(cfg.pickup, cfg.pickup_window_seconds, cfg.decide.rejected_log_seconds)
        gate = Gate(
            ledger,
            decider,
            feedback,
            GateScreen(config.screen),
            lang=cfg.language,
            quiet_seconds=cfg.quiet_seconds,
            pickup=Pickup(roster, policy),
        )
        gate.mode = cfg.mode
        checkin = None
        closers: list[Callable[[], None]] = [ledger.close, roster.close, feedback.close]
        if cfg.mode == "qr+face":  # the badge names the child, the face must match (1:1)
            gate.face_check = _face_check(config, stack)
            closers.append(gate.face_check.close)
        elif cfg.mode == "face":  # 1:N by face; a badge is accepted alone, as in mode qr
            from terminal.face.checkin import FaceCheckin  # noqa: PLC0415

            checkin = FaceCheckin(_face_check(config, stack), roster.children)
            closers.append(checkin.close)
        service_box: list[TerminalService] = []
        options = dict(config.display.options)
        if display_backend(config.display.backend).interactive:  # a window: our size, our keys
            options.setdefault("size", config.screen.size)
            options["on_key"] = lambda key: service_box[0].on_key(key) if service_box else None
        display = open_display(config.display.backend, **options)
        stack.callback(display.close)
        if display.size is not None and display.size != config.screen.size:
            log.warning(
                "terminal: display is %s but screen.width/height is %s", display.size, config.screen.size
            )
        system_clock = SystemClock()
        service = TerminalService(
            camera=open_camera(config.camera),
            pipeline=ScanPipeline(
                ScanConfig(region=config.camera.region, rescue_budget_ms=LIVE_RESCUE_BUDGET_MS)
            ),
            gate=gate,
            display=display,
            today=today,
            children=roster.children,
            notifier=notifier,
            retry_initial=config.service.retry_initial_seconds,
            retry_max=config.service.retry_max_seconds,
            card_seconds=cfg.card_seconds,
            status_file=config.service.status_file,
            disk_path=config.ledger.path.parent,
            clock_synced=lambda: system_clock.read().synced,
            closers=closers,
            face_checkin=checkin,
        )
        service_box.append(service)
        stack.pop_all()
        return service
    raise AssertionError("unreachable")  # pragma: no cover


def serve(
    config: TerminalConfig, *, max_frames: int | None = None, max_seconds: float | None = None
) -> RunStats:
    """Run the service until SIGTERM/SIGINT (or the limits); always closes the ledger cleanly."""
    service = open_service(config)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("terminal: %s received, stopping", signal.Signals(signum).name)
        service.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with service:
            stats = service.run(max_frames=max_frames, max_seconds=max_seconds)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("terminal: stopped after %d frames (%s)", stats.frames, stats.outcomes)
    return stats
