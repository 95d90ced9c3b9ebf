"""Synthetic camera photos of a badge held up at the gate, for tests, ``bench/`` and ``kgate demo``.

A badge card (a QR code plus the child's name) is drawn, then "photographed": placed into a 1280x720
or 1920x1080 scene with perspective, rotation, distance, blur, sensor noise, low light, glare and
JPEG compression. Everything is drawn from a seed, so the same seed always gives the same bytes.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from hardware.camera.frame import Image

#: Names with the glyphs the gate must show (Kazakh ә ғ қ ң ө ұ ү һ і, Russian, Latin).
NAMES = (
    "Аружан Серікқызы",
    "Әлихан Нұрланұлы",
    "Дияр Қайратұлы",
    "Айгерім Өмірзақ",
    "Інжу Ғалымжанқызы",
    "Нұрсұлтан Үсенов",
    "Һарун Бекұлы",
    "Мария Иванова",
    "Тимур Ахметов",
    "Sofia Brown",
)
SIZES = ((1280, 720), (1920, 1080))
_CARD_MODULE_PX = 12  # module size on the drawn card before it is photographed
_FONT_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
)


@dataclass(frozen=True)
class Shot:
    """How one photo was taken (all drawn from the seed; kept for reports)."""

    width: int
    height: int
    module_px: float
    angle: float
    tilt: float
    blur: float
    motion: float
    gain: float
    noise: float
    glare: float
    jpeg_quality: int


@dataclass(frozen=True)
class BadgePhoto:
    """A rendered photo: BGR pixels, their JPEG bytes, and what is on the badge."""

    image: Image
    jpeg: bytes
    payload: str
    name: str
    shot: Shot


def draw_shot(rng: random.Random, difficulty: float = 1.0) -> Shot:
    """Random photo conditions; ``difficulty`` 0 gives easy, well-lit, frontal shots, 1 the full range."""
    d = max(0.0, min(1.0, difficulty))
    width, height = rng.choice(SIZES)
    return Shot(
        width=width,
        height=height,
        module_px=rng.uniform(9.0 - 7.6 * d, 10.0 - 2.0 * d),
        angle=rng.gauss(0.0, 25.0 * d) if rng.random() > 0.15 * d else rng.uniform(-180.0, 180.0),
        tilt=rng.uniform(0.0, 0.32 * d),
        blur=rng.uniform(0.0, 2.4 * d) if rng.random() < 0.7 else 0.0,
        motion=rng.uniform(0.0, 9.0 * d) if rng.random() < 0.3 * d else 0.0,
        gain=rng.uniform(1.0 - 0.85 * d, 1.1),
        noise=rng.uniform(1.0, 1.0 + 13.0 * d),
        glare=rng.uniform(0.3, 1.0) if rng.random() < 0.3 * d else 0.0,
        jpeg_quality=rng.randint(round(90 - 60 * d), 95),
    )


def render_badge_photo(
    payload: str, name: str, seed: int, *, difficulty: float = 1.0, shot: Shot | None = None
) -> BadgePhoto:
    """Photograph a badge carrying ``payload`` and ``name`` under conditions drawn from ``seed``."""
    rng = random.Random(seed)  # noqa: S311 - reproducible scenes, not secrets
    shot = shot or draw_shot(rng, difficulty)
    nprng = np.random.default_rng(rng.getrandbits(64))
    card = draw_card(payload, name)
    scene = _background(shot.width, shot.height, nprng, rng)
    _place_card(scene, card, shot, rng)
    image = _expose(scene, shot, nprng, rng)
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, shot.jpeg_quality])
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 BGR image
        raise RuntimeError("JPEG encoding failed")
    jpeg = buffer.tobytes()
    decoded = np.asarray(cv2.imdecode(buffer, cv2.IMREAD_COLOR), dtype=np.uint8)
    return BadgePhoto(image=decoded, jpeg=jpeg, payload=payload, name=name, shot=shot)


def write_badge_photos(
    out_dir: Path, badges: Iterable[tuple[str, str]], seed: int, *, difficulty: float = 1.0
) -> list[dict[str, Any]]:
    """Render one photo per ``(payload, name)`` into ``out_dir`` with a ``manifest.jsonl``; returns its rows.

    The manifest has the same shape as the ZXing corpus one: ``file`` and expected ``text``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for number, (payload, name) in enumerate(badges):
        photo = render_badge_photo(payload, name, seed * 1_000_003 + number, difficulty=difficulty)
        file = f"badge-{number:04d}.jpg"
        (out_dir / file).write_bytes(photo.jpeg)
        rows.append({"file": file, "text": payload, "name": name, "shot": asdict(photo.shot)})
    (out_dir / "manifest.jsonl").write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
    )
    return rows


def qr_modules(payload: str) -> npt.NDArray[np.bool_]:
    """The QR symbol's dark modules, without quiet zone (alphanumeric mode for badge payloads)."""
    import segno  # noqa: PLC0415 - only rendering needs it

    qr = segno.make_qr(payload, error="m", boost_error=False)
    return np.array([[bool(v) for v in row] for row in qr.matrix], dtype=np.bool_)


def draw_card(payload: str, name: str) -> Image:
    """The printed badge: white card, QR with a 4-module quiet zone on the left, the name on the right."""
    modules = qr_modules(payload)
    m = _CARD_MODULE_PX
    qr_px = (modules.shape[0] + 8) * m
    card_h = qr_px + 2 * m
    card_w = int(card_h * 85.6 / 54.0)  # ID-1 card proportions
    card = PILImage.new("RGB", (card_w, card_h), (250, 250, 246))
    qr = np.where(modules, 20, 250).astype(np.uint8)
    qr = np.pad(qr, 4, constant_values=250)
    qr_img = PILImage.fromarray(np.kron(qr, np.ones((m, m), dtype=np.uint8))).convert("RGB")
    card.paste(qr_img, (m, m))
    draw = ImageDraw.Draw(card)
    text_x = qr_px + 2 * m
    first, _, last = name.partition(" ")
    draw.text((text_x, card_h * 0.25), first, font=_font(int(card_h * 0.095)), fill=(20, 20, 60))
    draw.text((text_x, card_h * 0.42), last, font=_font(int(card_h * 0.065)), fill=(40, 40, 80))
    draw.text((text_x, card_h * 0.78), "kgate", font=_font(int(card_h * 0.06)), fill=(0, 120, 90))
    draw.rectangle((0, 0, card_w - 1, card_h - 1), outline=(180, 180, 180), width=3)
    return np.asarray(card, dtype=np.uint8)[:, :, ::-1].copy()


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in _FONT_PATHS:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def _background(width: int, height: int, nprng: np.random.Generator, rng: random.Random) -> Image:
    """A cluttered, smoothly lit scene: coloured blobs, stripes and rectangles (coats, walls, doors)."""
    coarse = nprng.integers(30, 220, size=(5, 9, 3)).astype(np.uint8)
    small = cv2.resize(coarse, (width // 8, height // 8), interpolation=cv2.INTER_CUBIC)
    scene = np.asarray(cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR), dtype=np.uint8)
    for _ in range(rng.randint(4, 12)):
        color = tuple(int(c) for c in nprng.integers(0, 256, size=3))
        x, y = rng.randrange(width), rng.randrange(height)
        w, h = rng.randint(40, width // 3), rng.randint(40, height // 3)
        if rng.random() < 0.5:
            cv2.rectangle(scene, (x, y), (x + w, y + h), color, -1)
        else:
            cv2.ellipse(scene, (x, y), (w // 2, h // 2), rng.uniform(0, 180), 0, 360, color, -1)
    for _ in range(rng.randint(0, 6)):
        color = tuple(int(c) for c in nprng.integers(0, 256, size=3))
        p0 = (rng.randrange(width), rng.randrange(height))
        p1 = (rng.randrange(width), rng.randrange(height))
        cv2.line(scene, p0, p1, color, rng.randint(2, 14))
    return scene


def _place_card(scene: Image, card: Image, shot: Shot, rng: random.Random) -> None:
    """Warp the card into the scene with the shot's size, rotation and perspective tilt."""
    height, width = scene.shape[:2]
    card_h, card_w = card.shape[:2]
    scale = shot.module_px / _CARD_MODULE_PX
    w, h = card_w * scale, card_h * scale
    theta = math.radians(shot.angle)
    corners = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    corners = corners @ rot.T
    jitter = (
        np.array([[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(4)]) * shot.tilt * max(w, h) / 2
    )
    corners = corners + jitter
    span = corners.max(axis=0) - corners.min(axis=0)
    margin_x = max(0.0, (width - span[0]) / 2 - 4)
    margin_y = max(0.0, (height - span[1]) / 2 - 4)
    center = np.array(
        [width / 2 + rng.uniform(-margin_x, margin_x), height / 2 + rng.uniform(-margin_y, margin_y)]
    )
    dst = (corners + center).astype(np.float32)
    src = np.array([[0, 0], [card_w, 0], [card_w, card_h], [0, card_h]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(card, matrix, (width, height), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((card_h, card_w), 255, np.uint8), matrix, (width, height))
    np.copyto(scene, warped, where=(mask > 127)[:, :, None])


def _expose(scene: Image, shot: Shot, nprng: np.random.Generator, rng: random.Random) -> Image:
    """The camera's imperfections: optical and motion blur, light falloff, glare, sensor noise."""
    height, width = scene.shape[:2]
    img: npt.NDArray[np.float32] = scene.astype(np.float32)
    if shot.blur > 0.05:
        img = np.asarray(cv2.GaussianBlur(img, (0, 0), shot.blur), dtype=np.float32)
    if shot.motion >= 1.0:
        length = round(shot.motion)
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0 / length
        rotation = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1.0)
        kernel = np.asarray(cv2.warpAffine(kernel, rotation, (length, length)), dtype=np.float32)
        img = np.asarray(cv2.filter2D(img, -1, kernel / max(float(kernel.sum()), 1e-6)), dtype=np.float32)
    # Smooth light fields are computed at 1/8 scale and stretched: same look, a fraction of the time.
    sw, sh = width // 8, height // 8
    ys, xs = np.mgrid[0:sh, 0:sw].astype(np.float32) * 8.0
    cx, cy = rng.uniform(0, width), rng.uniform(0, height)
    light = shot.gain * (1.0 - 0.35 * ((xs - cx) ** 2 + (ys - cy) ** 2) / float(width**2 + height**2))
    glare = np.zeros_like(light)
    if shot.glare > 0:
        gx, gy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
        radius = rng.uniform(0.04, 0.12) * width
        glare = np.exp(-((xs - gx) ** 2 + (ys - gy) ** 2) / (2 * radius**2)) * 255.0 * shot.glare
    light_full = np.asarray(cv2.resize(light, (width, height), interpolation=cv2.INTER_LINEAR), np.float32)
    glare_full = np.asarray(
        cv2.resize(glare.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR), np.float32
    )
    tint = np.array([rng.uniform(0.85, 1.0), 1.0, rng.uniform(0.85, 1.15)], np.float32)
    img *= light_full[:, :, None]
    img *= tint
    img += glare_full[:, :, None]
    noise = np.empty(img.shape, np.float32)
    cv2.setRNGSeed(int(nprng.integers(0, 2**31 - 1)))  # OpenCV's generator is several times faster
    cv2.randn(noise, np.zeros(1), np.full(1, shot.noise))
    img += noise
    return np.clip(img, 0, 255).astype(np.uint8)
