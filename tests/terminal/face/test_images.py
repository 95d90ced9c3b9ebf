"""Bad images are refused with one line, and a huge picture before any pixel is decoded."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from terminal.face.errors import BadImage
from terminal.face.images import load_rgb


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` but holds (almost) no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = b"IDAT" + zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
        + struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat))
    )  # fmt: skip


def test_bad_images(tmp_path: Path) -> None:
    (tmp_path / "text.jpg").write_text("not an image")
    good = tmp_path / "good.png"
    Image.new("RGBA", (40, 30), (10, 20, 30, 255)).save(good)
    (tmp_path / "trunc.png").write_bytes(good.read_bytes()[:60])
    (tmp_path / "bomb.png").write_bytes(png_header(60000, 60000))
    assert load_rgb(good).shape == (30, 40, 3)
    with pytest.raises(BadImage, match="not an image"):
        load_rgb(tmp_path / "text.jpg")
    with pytest.raises(BadImage, match="unreadable image"):
        load_rgb(tmp_path / "trunc.png")
    with pytest.raises(BadImage, match="more than 40000000 pixels"):
        load_rgb(tmp_path / "bomb.png")
    with pytest.raises(BadImage, match="cannot read"):
        load_rgb(tmp_path / "missing.png")


def test_large_but_not_bomb_header_is_refused_by_our_limit(tmp_path: Path) -> None:
    (tmp_path / "big.png").write_bytes(png_header(8000, 6000))  # 48 MP: under PIL's limit, over ours
    with pytest.raises(BadImage, match="8000x6000 pixels is more than 40000000"):
        load_rgb(tmp_path / "big.png")
