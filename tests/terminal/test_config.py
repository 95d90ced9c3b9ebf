"""The terminal's TOML config: defaults from systemd's directories, errors that name the key."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from hardware.camera.frame import Region
from terminal.config import ConfigError, default_config_path, load_config

FULL = """
[ledger]
path = "gate.db"
origin = "register.example.kz/kgate/almaty-042-gate-1"
[roster]
path = "/srv/roster.db"
[camera]
backend = "opencv"
device = "/dev/video0"
size = [1280, 720]
region = [0.2, 0.1, 0.8, 0.9]
[gate]
mode = "qr"
debounce_seconds = 90
hours = ["07:30", 19:00:00]
timezone = "Asia/Almaty"
language = "ru"
[screen]
width = 800
height = 480
[display]
backend = "png"
directory = "shots"
[feedback]
green_pin = 17
relay_pin = 24
pin_factory = "mock"
[service]
retry_max_seconds = 5
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "terminal.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_full_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    config = load_config(write(tmp_path, FULL))
    assert config.ledger.path == tmp_path / "state" / "gate.db"
    assert config.ledger.key == tmp_path / "state" / "device.key"
    assert config.roster_path == Path("/srv/roster.db")
    assert config.camera.device == "/dev/video0" and config.camera.size == (1280, 720)
    assert config.camera.region == Region(0.2, 0.1, 0.8, 0.9)
    assert (config.gate.decide.opens, config.gate.decide.closes) == (dt.time(7, 30), dt.time(19, 0))
    assert config.screen.lang == "ru" and config.screen.size == (800, 480)  # screen follows gate.language
    assert config.display.options == {"directory": tmp_path / "state" / "shots"}
    assert config.feedback is not None and config.feedback.relay_pin == 24
    assert config.service.retry_max_seconds == 5
    assert config.service.status_file == tmp_path / "state" / "terminal-status.json"


def test_defaults_come_from_systemd_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", f"{tmp_path}/a:{tmp_path}/b")
    monkeypatch.setenv("CONFIGURATION_DIRECTORY", str(tmp_path / "etc"))
    assert default_config_path() == tmp_path / "etc" / "terminal.toml"
    config = load_config(write(tmp_path, ""))
    assert config.ledger.path == tmp_path / "a" / "ledger.db" and config.roster_path.parent == tmp_path / "a"
    assert config.camera.backend == "picamera2" and config.feedback is None
    assert config.display.backend == "null" and config.gate.mode == "qr"
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.delenv("CONFIGURATION_DIRECTORY")
    assert default_config_path() == Path("/etc/kgate/terminal.toml")
    assert load_config(write(tmp_path, "")).ledger.path == Path("/var/lib/kgate/ledger.db")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[camera]\nsize = [1280]", "camera.size: expected [width, height]"),
        ("[camera]\nsize = 'big'", "camera.size: expected [width, height]"),
        ("[camera]\nbackend = 'usb'", "camera.backend: 'usb' is not one of replay, opencv, picamera2"),
        ("[camera]\nbackend = 'replay'", "camera.paths: the replay backend needs at least one path"),
        ("[camera]\nregion = [0.5, 0, 0.4, 1]", "camera.region: expected 0 <= left < right"),
        ("[camera]\ndevice = '/dev/video0'", "camera.device: the picamera2 backend takes a camera number"),
        ("[camera]\nzoom = 2", "camera.zoom: unknown setting"),
        ("[gate]\nmode = 'fingerprint'", "gate.mode: 'fingerprint' is not one of qr, qr+face, face"),
        ("[gate]\nhours = ['19:00', '07:00']", "gate.hours: the gate must open before it closes"),
        ("[gate]\nhours = ['7 am', '19:00']", "gate.hours[0]: expected a time"),
        ("[gate]\ntimezone = 'Mars/Olympus'", "gate.timezone: 'Mars/Olympus' is not an IANA time zone"),
        ("[gate]\nlanguage = 'de'", "gate.language: 'de' is not one of kk, ru, en"),
        ("[gate]\ndebounce_seconds = -1", "gate.debounce_seconds: expected a number in [0, 86400]"),
        ("[screen]\nwidth = 10", "screen.width: 10 must be an integer"),
        ("[screen]\ncolour = 'red'", "screen.colour: unknown setting"),
        ("[display]\nbackend = 'hdmi'", "display.backend: 'hdmi' is not one of"),
        ("[display]\nbackend = 'null'\ndirectory = 'x'", "display.directory: unknown setting"),
        ("[feedback]\nred_pin = 40", "feedback.red_pin: 40 is not a BCM GPIO number"),
        ("[feedback]\nred_pin = 17", "feedback.red_pin: GPIO17 is already feedback.green_pin"),
        ("[ledger]\norigin = 'just-a-name'", "ledger.origin: 'just-a-name' is not of the form"),
        ("[ledger]\npath = 3", "ledger.path: expected a path"),
        ("[service]\nretry_max_seconds = 0.1", "service.retry_max_seconds: must not be less than"),
        ("[cameras]\nbackend = 'replay'", "cameras: unknown section"),
        ("camera = 1", "camera: expected a table"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, toml))
    assert str(caught.value).startswith(message)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(write(tmp_path, "[camera\n"))


def test_cli_exits_2_with_one_line_naming_the_key(tmp_path: Path) -> None:
    config = write(tmp_path, "[camera]\nsize = [1280]\n")
    proc = subprocess.run(
        [sys.executable, "-m", "kgate", "terminal", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr == "kgate: error: camera.size: expected [width, height] in pixels (16..8192)\n"
    ok = write(tmp_path, "[camera]\nbackend = 'replay'\npaths = ['x']\n")
    proc = subprocess.run(
        [sys.executable, "-m", "kgate", "terminal", "run", "--config", str(ok), "--check-config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout.strip().endswith(": ok")
