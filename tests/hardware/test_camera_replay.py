"""The replay camera: files, folders and videos in order, an injected clock, and pulled cables."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from hardware.camera import OpenCVSource, Picamera2Source, ReplaySource
from hardware.errors import (
    CameraBackendMissing,
    CameraLost,
    CameraNotFound,
    CameraRetryable,
    CameraStalled,
    CameraUnavailable,
    EndOfReplay,
    UnreadableFrame,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 0.5
        return self.now


def _image(path: Path, value: int, size: tuple[int, int] = (64, 48)) -> Path:
    cv2.imwrite(str(path), np.full((size[1], size[0], 3), value, np.uint8))
    return path


def test_replays_files_in_order_with_clock_and_indexes(tmp_path: Path) -> None:
    files = [_image(tmp_path / f"{i}.png", 10 * i) for i in range(3)]
    with ReplaySource(files, clock=FakeClock()) as camera:
        frames = list(camera.frames())
    assert [f.origin for f in frames] == [str(p) for p in files]
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 10, 20]
    assert [f.timestamp for f in frames] == [100.5, 101.0, 101.5]
    assert [f.index for f in frames] == [0, 1, 2]


def test_folders_video_loop_gray_and_preview(tmp_path: Path) -> None:
    _image(tmp_path / "b.png", 50, size=(1280, 720))
    _image(tmp_path / "a.jpg", 200, size=(1280, 720))
    (tmp_path / "notes.txt").write_text("ignored")
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 10, (32, 24))
    for value in (0, 255, 0, 255):
        writer.write(np.full((24, 32, 3), value, np.uint8))
    writer.release()

    camera = ReplaySource([tmp_path], loop=True, gray=True)
    frames = [camera.read() for _ in range(9)]
    camera.close()

    assert [Path(f.origin).name for f in frames[:6]] == ["a.jpg", "b.png", *["clip.avi"] * 4]
    assert frames[6].origin == frames[0].origin  # looped
    assert all(f.image.ndim == 2 for f in frames)
    assert frames[0].preview().shape == (360, 640)


def test_end_of_replay_and_unreadable_files_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    good = _image(tmp_path / "good.png", 1)
    camera = ReplaySource([bad, good])
    with pytest.raises(UnreadableFrame, match=r"bad\.png"):
        camera.read()
    assert camera.read().origin == str(good)
    with pytest.raises(EndOfReplay):
        camera.read()


def test_unplug_stall_and_replug(tmp_path: Path) -> None:
    camera = ReplaySource([_image(tmp_path / "x.png", 9)], loop=True)
    camera.read()
    camera.unplug()
    with pytest.raises(CameraLost):
        camera.read()
    camera.close()
    with pytest.raises(CameraNotFound):
        camera.open()
    camera.replug()
    camera.open()
    camera.stall()
    with pytest.raises(CameraStalled) as stalled:
        camera.read()
    assert isinstance(stalled.value, TimeoutError) and isinstance(stalled.value, CameraRetryable)
    camera.replug()
    assert camera.read().image.shape == (48, 64, 3)


def test_picamera2_missing_is_a_clear_camera_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # what a laptop or a venv without it looks like
    camera = Picamera2Source()
    with pytest.raises(CameraUnavailable, match="apt install python3-picamera2") as missing:
        camera.open()
    assert isinstance(missing.value, CameraBackendMissing) and isinstance(missing.value, ImportError)
    assert not camera.is_open


def test_opencv_source_without_a_device_is_camera_not_found() -> None:
    with pytest.raises(CameraNotFound, match="/dev/video-kgate-none"):
        OpenCVSource("/dev/video-kgate-none").open()
