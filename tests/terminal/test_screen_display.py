"""Display backends: headless, PNG screenshots, and the framebuffer writer against a fake /dev/fb0."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hardware.display import (
    DisplayConfigError,
    DisplayUnavailable,
    FramebufferDisplay,
    NullDisplay,
    PngDisplay,
    open_display,
)
from hardware.display.window import ppm


def fake_fb(tmp_path: Path, width: int, height: int, bpp: int, stride: int) -> tuple[Path, Path]:
    sysfs = tmp_path / "sys" / "fb0"
    sysfs.mkdir(parents=True)
    (sysfs / "virtual_size").write_text(f"{width},{height}\n")
    (sysfs / "bits_per_pixel").write_text(f"{bpp}\n")
    (sysfs / "stride").write_text(f"{stride}\n")
    device = tmp_path / "fb0"
    device.write_bytes(bytes(stride * height))
    return device, sysfs


def test_framebuffer_32bpp_writes_bgrx_rows_at_the_stride(tmp_path: Path) -> None:
    device, sysfs = fake_fb(tmp_path, 8, 4, 32, stride=40)  # 8 px × 4 B + 8 B padding per line
    image = Image.new("RGB", (8, 4), (10, 20, 30))
    image.putpixel((7, 3), (255, 0, 0))
    with FramebufferDisplay(device, sysfs=sysfs) as fb:
        assert fb.size == (8, 4) and fb.pixel_format == "BGRX"
        fb.show(image)
    raw = np.frombuffer(device.read_bytes(), np.uint8).reshape(4, 40)
    assert list(raw[0, :4]) == [30, 20, 10, 255]
    assert list(raw[3, 28:32]) == [0, 0, 255, 255]  # red is B=0, G=0, R=255
    assert not raw[:, 32:].any()  # the padding is left alone


def test_framebuffer_16bpp_is_rgb565(tmp_path: Path) -> None:
    device, sysfs = fake_fb(tmp_path, 4, 2, 16, stride=8)
    image = Image.new("RGB", (4, 2), (255, 0, 0))
    image.putpixel((1, 0), (0, 255, 0))
    image.putpixel((2, 0), (0, 0, 255))
    with FramebufferDisplay(device, sysfs=sysfs) as fb:
        fb.show(image)
    words = np.frombuffer(device.read_bytes(), "<u2").reshape(2, 4)
    assert [hex(w) for w in words[0, :3]] == ["0xf800", "0x7e0", "0x1f"]


def test_framebuffer_scales_a_wrong_sized_frame(tmp_path: Path) -> None:
    device, sysfs = fake_fb(tmp_path, 8, 4, 32, stride=32)
    with FramebufferDisplay(device, sysfs=sysfs) as fb:
        fb.show(Image.new("RGB", (16, 8), (1, 2, 3)))
    assert list(np.frombuffer(device.read_bytes(), np.uint8)[:4]) == [3, 2, 1, 255]


def test_framebuffer_missing_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(DisplayUnavailable, match="no framebuffer"):
        FramebufferDisplay(tmp_path / "fb9", sysfs=tmp_path / "nope")
    _, sysfs = fake_fb(tmp_path, 8, 4, 32, stride=32)
    with pytest.raises(DisplayUnavailable, match="fb7"):
        FramebufferDisplay(tmp_path / "fb7", sysfs=sysfs)


def test_png_and_null_displays(tmp_path: Path) -> None:
    image = Image.new("RGB", (32, 20), (0, 128, 0))
    with open_display("png", directory=tmp_path / "shots", every=2) as png:
        assert isinstance(png, PngDisplay)
        for _ in range(3):
            png.show(image)
        named = png.save(image, "accepted-kk")
    assert sorted(p.name for p in (tmp_path / "shots").iterdir()) == [
        "accepted-kk.png",
        "frame-00001.png",
        "frame-00003.png",
    ]
    assert Image.open(named).getpixel((0, 0)) == (0, 128, 0)
    null = open_display("null")
    assert isinstance(null, NullDisplay)
    null.show(image)
    assert null.frames == 1 and null.last is image
    with pytest.raises(DisplayConfigError, match=r"display\.backend"):
        open_display("hdmi")


def test_ppm_for_tk() -> None:
    data = ppm(Image.new("RGB", (2, 1), (1, 2, 3)))
    assert data == b"P6 2 1 255\n" + bytes([1, 2, 3, 1, 2, 3])


@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="no X display for a window")
def test_window_shows_frames() -> None:
    with open_display("window", size=(64, 32)) as window:
        window.show(Image.new("RGB", (64, 32), (200, 0, 0)))
