"""Camera and display backends are found by name in hardware/'s registries, and the config reads them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from hardware.camera import BACKENDS as CAMERA_BACKENDS
from hardware.camera import CameraConfig, ReplaySource, open_camera
from hardware.display import BACKENDS as DISPLAY_BACKENDS
from hardware.display import PngDisplay, open_display
from hardware.errors import CameraConfigError
from terminal.config import ConfigError, parse_config


def _parse(tmp_path: Path, doc: dict[str, object]) -> object:
    return parse_config(doc, base=tmp_path, state=tmp_path / "state")


def test_the_config_offers_exactly_the_registered_camera_backends(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _parse(tmp_path, {"camera": {"backend": "usb"}})
    assert str(info.value) == f"camera.backend: 'usb' is not one of {', '.join(CAMERA_BACKENDS)}"
    for name in CAMERA_BACKENDS:
        table: dict[str, object] = {"backend": name, "paths": ["x.png"]}
        assert parse_config({"camera": table}, base=tmp_path).camera.backend == name


def test_each_camera_backend_states_its_own_requirements() -> None:
    with pytest.raises(CameraConfigError, match=r"camera\.paths: the replay backend"):
        CameraConfig(backend="replay")
    with pytest.raises(CameraConfigError, match=r"camera\.device: the picamera2 backend"):
        CameraConfig(backend="picamera2", device="/dev/video0")
    assert CameraConfig(backend="opencv", device="/dev/video0").device == "/dev/video0"


def test_a_replay_camera_from_the_config_plays_the_file(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "shot.png"), np.full((48, 64, 3), 200, np.uint8))
    config = parse_config(
        {"camera": {"backend": "replay", "paths": ["shot.png"], "loop": False}}, base=tmp_path
    )
    with open_camera(config.camera) as camera:
        assert isinstance(camera, ReplaySource)
        frame = camera.read()
    assert frame.image.shape[:2] == (48, 64) and int(frame.image.mean()) == 200


def test_display_options_are_the_registered_ones(tmp_path: Path) -> None:
    for name, backend in DISPLAY_BACKENDS.items():
        other = next(k for b in DISPLAY_BACKENDS.values() for k in b.options if k not in backend.options)
        with pytest.raises(ConfigError, match=rf"^display\.{other}: unknown setting$"):
            _parse(tmp_path, {"display": {"backend": name, other: "x"}})
    with pytest.raises(ConfigError, match=r"display\.backend: 'hdmi' is not one of null, png, window"):
        _parse(tmp_path, {"display": {"backend": "hdmi"}})
    with pytest.raises(ConfigError, match=r"^display\.every: expected a number"):
        _parse(tmp_path, {"display": {"backend": "png", "every": "often"}})


def test_png_display_from_the_config_writes_screenshots_below_the_state_dir(tmp_path: Path) -> None:
    config = parse_config({"display": {"backend": "png", "every": 2}}, state=tmp_path / "state")
    assert config.display.options == {"directory": tmp_path / "state" / "screens", "every": 2}
    with open_display(config.display.backend, **config.display.options) as display:
        assert isinstance(display, PngDisplay)
        for _ in range(3):
            display.show(Image.new("RGB", (8, 4), (0, 128, 0)))
    assert sorted(p.name for p in (tmp_path / "state" / "screens").iterdir()) == [
        "frame-00001.png",
        "frame-00003.png",
    ]


def test_choosing_backends_imports_no_hardware_library(tmp_path: Path) -> None:
    """picamera2 and tkinter are imported only when their backend is opened, not when configured.

    Empty stand-ins for both are put on the path, so an eager import would succeed and be seen even on a
    machine without them.
    """
    stubs = tmp_path / "stubs"
    for name in ("picamera2", "tkinter"):
        (stubs / name).mkdir(parents=True)
        (stubs / name / "__init__.py").write_text("")
    script = f"""
import sys
sys.path.insert(0, {str(stubs)!r})
from pathlib import Path
from terminal.config import parse_config
from hardware.camera import open_camera
import terminal.service
config = parse_config({{"camera": {{"backend": "picamera2"}}, "display": {{"backend": "window"}}}},
                      state=Path({str(tmp_path)!r}))
open_camera(config.camera)  # built, not opened
print(sorted(m for m in ("picamera2", "tkinter") if m in sys.modules))
import tkinter, picamera2  # the stand-ins work: an eager import would have been seen
print(sorted(m for m in ("picamera2", "tkinter") if m in sys.modules))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split("\n")[:2] == ["[]", "['picamera2', 'tkinter']"]
