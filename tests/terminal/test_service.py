"""The terminal service: systemd READY/WATCHDOG, camera stalls and unplugs, restarts, SIGTERM."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hardware.camera import ReplaySource
from hardware.camera.synthetic import render_badge_photo
from hardware.display import NullDisplay
from hardware.feedback import Feedback, InOut
from kgate.sdnotify import Notifier
from ledger.store import open_ledger
from ledger.verify import verify_ledger
from terminal.badge import encode_badge, serial_from_bytes
from terminal.decide import DecideConfig, Decider, Direction
from terminal.gate import Gate
from terminal.roster import Roster, open_roster, parse_roster
from terminal.scan import ScanPipeline
from terminal.screen import GateScreen, ScreenConfig
from terminal.screen.theme import NO_CAMERA
from terminal.service import TerminalService
from terminal.today import Today, today_from_ledger
from tests.conftest import READY_S, wait_until

ROOT = Path(__file__).resolve().parents[2]
ALL_DAY = DecideConfig(debounce_seconds=0, opens=dt.time(0), closes=dt.time(23, 59, 59, 999999))
NAMES = ("Аружан Сейітова", "Әлихан Қасымов", "Інжу Өмірзақ")


class RecordingFeedback(Feedback):
    """A peer of GpioFeedback that writes down what the lights and buzzer were told."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def accepted(self, direction: InOut) -> None:
        self.calls.append(f"accepted:{direction}")

    def refused(self) -> None:
        self.calls.append("refused")

    def fault(self) -> None:
        self.calls.append("fault")

    def clear(self) -> None:
        self.calls.append("clear")


@dataclass
class Kit:
    dir: Path
    photos: Path
    roster_json: Path


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    """Three easy badge photos and the roster that knows them."""
    root = tmp_path_factory.mktemp("kit")
    photos = root / "photos"
    photos.mkdir()
    serials = [serial_from_bytes(bytes([i]) * 10) for i in range(1, 4)]
    for i, (serial, name) in enumerate(zip(serials, NAMES, strict=True)):
        photo = render_badge_photo(encode_badge(serial), name, 100 + i, difficulty=0.0)
        (photos / f"badge-{i}.jpg").write_bytes(photo.jpeg)
    roster = {
        "version": 3,
        "children": [{"id": f"c-{i}", "name": n, "group": "Күншуақ"} for i, n in enumerate(NAMES)],
        "badges": [{"serial": s, "child": f"c-{i}"} for i, s in enumerate(serials)],
    }
    roster_json = root / "roster.json"
    roster_json.write_text(json.dumps(roster, ensure_ascii=False), encoding="utf-8")
    return Kit(root, photos, roster_json)


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    """A real AF_UNIX datagram socket standing in for systemd's $NOTIFY_SOCKET."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify.sock"))
        sock.settimeout(5)
        yield sock


def receive_until(
    sock: socket.socket,
    wanted: str,
    what: str,
    timeout: float = READY_S,
    proc: subprocess.Popen[str] | None = None,
) -> list[str]:
    """Every datagram up to and including ``wanted`` (STATUS= lines kept); fails naming ``what`` when
    the deadline passes or ``proc`` (the sender) exits first."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while wanted not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"readiness deadline passed: {what} not within {timeout:g} s ({seen})", pytrace=False)
        if proc is not None and proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"{what}: the process exited {proc.returncode}: {err.strip()[-500:]}", pytrace=False)
        sock.settimeout(min(left, 1.0))
        try:
            seen.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
        finally:
            sock.settimeout(5)
    return seen


def drain(sock: socket.socket, wait: float = 0.0) -> list[str]:
    """Every datagram received so far (after ``wait`` seconds), STATUS= lines left out.

    ``wait`` is only for checking that nothing arrives during a quiet window; to wait for something
    to arrive, use :func:`receive_until`.
    """
    time.sleep(wait)
    sock.setblocking(False)
    out: list[str] = []
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        sock.setblocking(True)
        sock.settimeout(5)
    return [m for m in out if not m.startswith("STATUS=")]


@dataclass
class Rig:
    service: TerminalService
    camera: ReplaySource
    feedback: RecordingFeedback
    display: NullDisplay
    roster: Roster
    ledger_path: Path

    def ledger_size(self) -> int:
        return self.service.gate.ledger.size  # type: ignore[attr-defined, no-any-return]


class TickingClock:
    """A monotonic clock that moves 10 ms each time it is read: ``run(max_seconds=…)`` then ends after
    a fixed number of loop turns however slowly the machine runs them."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.01
        return self.now


def make_rig(
    kit: Kit,
    tmp: Path,
    notify: str | None = None,
    decide: DecideConfig = ALL_DAY,
    monotonic: Callable[[], float] = time.monotonic,
) -> Rig:
    roster = open_roster(tmp / "roster.db")
    roster.install(parse_roster(kit.roster_json.read_bytes()))
    ledger = open_ledger(tmp / "ledger.db", origin="reg.test/kgate/gate-1")
    decider = Decider(roster, decide)
    tz = decide.tzinfo()
    today = today_from_ledger(ledger, decider.now().astimezone(tz).date(), tz)
    today.restore_into(decider)
    feedback = RecordingFeedback()
    gate = Gate(ledger, decider, feedback, GateScreen(ScreenConfig(width=800, height=480)), lang="kk")
    camera = ReplaySource([kit.photos], loop=True)
    display = NullDisplay()
    service = TerminalService(
        camera=camera,
        pipeline=ScanPipeline(),
        gate=gate,
        display=display,
        today=today,
        children=roster.children,
        notifier=Notifier(notify or ""),
        retry_initial=0.02,
        retry_max=0.05,
        ping_interval=0.0,
        closers=(ledger.close, roster.close),
        monotonic=monotonic,
    )
    return Rig(service, camera, feedback, display, roster, tmp / "ledger.db")


def shows_camera_lost(rig: Rig) -> bool:
    """The screen the display got last has the grey "camera lost" preview box and the alert."""
    image = rig.display.last
    assert image is not None
    x0, y0 = rig.service.gate.screen.layout.preview[:2]  # type: ignore[union-attr]
    corner = image.getpixel((x0 + 3, y0 + 3))
    return corner == NO_CAMERA and "error.camera_lost" in rig.service.gate.status.alerts


def test_ready_then_watchdog_pings(kit: Kit, tmp_path: Path, notify_socket: socket.socket) -> None:
    rig = make_rig(kit, tmp_path, notify_socket.getsockname())
    with rig.service:
        stats = rig.service.run(max_frames=3)
    messages = drain(notify_socket)
    assert messages[:4] == ["READY=1", "WATCHDOG=1", "WATCHDOG=1", "WATCHDOG=1"]
    assert messages[-1] == "STOPPING=1" and messages.count("READY=1") == 1
    assert stats.outcomes == {"accepted": 3} and rig.feedback.calls == ["accepted:in"] * 3


def test_stalled_camera_stops_pings_shows_camera_lost_and_recovers(
    kit: Kit, tmp_path: Path, notify_socket: socket.socket
) -> None:
    rig = make_rig(kit, tmp_path, notify_socket.getsockname())
    runner = threading.Thread(target=rig.service.run, daemon=True)
    runner.start()
    try:
        seen = receive_until(notify_socket, "WATCHDOG=1", "READY=1 and the first WATCHDOG=1")
        assert seen[0] == "STATUS=opening the camera"
        assert [m for m in seen if not m.startswith("STATUS=")] == ["READY=1", "WATCHDOG=1"]

        rig.camera.stall()
        # The loop has seen the stall once the camera-lost screen is up (the last step of handling it).
        wait_until(lambda: rig.service.stats.camera_losses == 1 and shows_camera_lost(rig), "camera lost")
        drain(notify_socket)  # pings of frames handled before the stall
        size = rig.ledger_size()
        assert drain(notify_socket, 0.6) == []  # no frames: no pings, systemd would restart us
        assert shows_camera_lost(rig) and rig.service.stats.camera_losses == 1
        assert rig.ledger_size() == size and rig.feedback.calls[-1] == "fault"

        rig.camera.replug()
        receive_until(notify_socket, "WATCHDOG=1", "a WATCHDOG=1 after the replug")
        wait_until(lambda: not shows_camera_lost(rig), "the gate screen back after the replug")
        assert rig.service.stats.recoveries == 1
        assert rig.service.gate.status.camera_ok and "clear" in rig.feedback.calls
    finally:
        rig.service.stop()
        runner.join(READY_S)
        rig.service.close()
    assert not runner.is_alive()


def test_unplugged_camera_acknowledges_nothing_and_recovers(kit: Kit, tmp_path: Path) -> None:
    rig = make_rig(kit, tmp_path, monotonic=TickingClock())  # 0.3 s below: ~30 reads of the clock
    with rig.service:
        rig.service.run(max_frames=3)
        size, calls = rig.ledger_size(), len(rig.feedback.calls)
        assert size == 3  # three check-ins
        rig.camera.unplug()
        rig.service.run(max_seconds=0.3)
        assert shows_camera_lost(rig)
        assert rig.ledger_size() == size  # nothing stored...
        assert rig.feedback.calls[calls:] == ["fault"]  # ...and nothing acknowledged, only the fault
        assert rig.service.stats.camera_losses == 1 and rig.service.stats.frames == 3
        rig.camera.replug()
        rig.service.run(max_frames=3)
        assert not shows_camera_lost(rig) and rig.service.stats.recoveries == 1
        assert rig.ledger_size() == size + 3  # check-ins resumed
    assert verify_ledger(rig.ledger_path).size == size + 3


def test_restart_restores_todays_state_from_the_ledger(kit: Kit, tmp_path: Path) -> None:
    decide = DecideConfig(debounce_seconds=600, opens=dt.time(0), closes=dt.time(23, 59, 59, 999999))
    rig = make_rig(kit, tmp_path, decide=decide)
    with rig.service:
        rig.service.run(max_frames=3)
    assert rig.service.stats.outcomes == {"accepted": 3}
    again = make_rig(kit, tmp_path, decide=decide)  # a restart: same ledger, fresh process state
    with again.service:
        again.service.run(max_frames=3)
        listing = again.service.today.today_list(again.roster.children())
    assert again.service.stats.outcomes == {"repeat": 3}  # "already checked in", no second entry
    assert [len(g.present) for g in listing.groups] == [3]


def test_today_keeps_first_arrival_and_last_departure() -> None:
    tz = dt.timezone(dt.timedelta(hours=5))
    today = Today(dt.date(2026, 3, 2), tz)
    at = dt.datetime(2026, 3, 2, 8, 0, tzinfo=tz)
    today.record("a", Direction.OUT, at + dt.timedelta(hours=9))
    today.record("a", Direction.IN, at)  # read out of order
    today.record("b", Direction.IN, at - dt.timedelta(days=1))  # yesterday: ignored
    assert set(today.children) == {"a"}
    state = today.children["a"]
    assert state.direction is Direction.OUT and state.first_in == at


def _config(kit: Kit, tmp: Path, loop: bool) -> Path:
    config = tmp / "terminal.toml"
    config.write_text(
        f"""
[ledger]
origin = "reg.test/kgate/gate-1"
[camera]
backend = "replay"
paths = ["{kit.photos}"]
loop = {str(loop).lower()}
[gate]
hours = ["00:00", "23:59:59.999999"]
debounce_seconds = 0
[screen]
width = 800
height = 480
[display]
backend = "png"
every = 50
""",
        encoding="utf-8",
    )
    return config


def test_cli_run_notifies_systemd_and_stops_cleanly_on_sigterm(
    kit: Kit, tmp_path: Path, notify_socket: socket.socket
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "kgate",
            "roster",
            "load",
            str(kit.roster_json),
            "--db",
            str(state / "roster.db"),
        ],
        check=True,
        capture_output=True,
    )
    env = {
        **os.environ,
        "STATE_DIRECTORY": str(state),
        "NOTIFY_SOCKET": notify_socket.getsockname(),
        "WATCHDOG_USEC": "300000",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "kgate", "terminal", "run", "--config", str(_config(kit, tmp_path, True))],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        seen = receive_until(
            notify_socket, "WATCHDOG=1", "`kgate terminal run`'s READY=1 and WATCHDOG=1", proc=proc
        )
        assert [m for m in seen if not m.startswith("STATUS=")] == ["READY=1", "WATCHDOG=1"]
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=READY_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"readiness deadline passed: no exit within {READY_S:g} s of SIGTERM", pytrace=False)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert "SIGTERM received, stopping" in out and "accepted" in out
    assert err == ""
    report = verify_ledger(state / "ledger.db")  # closed cleanly, verifies
    assert report.size >= 2
    status = json.loads((state / "terminal-status.json").read_text())
    assert status["camera_ok"] is True and status["roster_version"] == 3
    assert list((state / "screens").glob("frame-*.png"))
