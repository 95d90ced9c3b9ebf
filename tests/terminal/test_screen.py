"""The gate screen: screenshots of accept / refused / error in kk, ru and en, checked by pixels.

Set ``KGATE_SCREENS_DIR=DIR`` to keep the screenshots for a person to look at.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from terminal.i18n import LANGUAGES
from terminal.screen import (
    CardKind,
    Direction,
    FontNotFoundError,
    GateScreen,
    GlyphMissingError,
    ResultCard,
    ScreenConfig,
    ScreenConfigError,
    ScreenState,
    StatusInfo,
    theme,
)
from terminal.screen.fonts import KAZAKH_LETTERS, check_coverage, has_glyph
from terminal.screen.samples import MORNING, STATUS, sample_today, synthetic_frame

AT = dt.time(8, 12)
CARDS = {
    "accepted": ResultCard(
        CardKind.ACCEPTED, name="Аружан", group="Күншуақ", time=AT, direction=Direction.IN
    ),
    "refused": ResultCard(CardKind.REFUSED, time=AT, message_key="refused.revoked_badge"),
    "error": ResultCard(CardKind.ERROR, time=AT, message_key="error.not_recorded"),
}


@pytest.fixture(scope="module")
def screen() -> GateScreen:
    return GateScreen()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keep = os.environ.get("KGATE_SCREENS_DIR")
    path = Path(keep) if keep else tmp_path_factory.mktemp("screens")
    path.mkdir(parents=True, exist_ok=True)
    return path


def crop(image: Image.Image, box: tuple[int, int, int, int]) -> np.ndarray:
    return np.asarray(image.crop(box))


def dominant(image: Image.Image, box: tuple[int, int, int, int]) -> tuple[int, ...]:
    pixels = crop(image, box).reshape(-1, 3)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    return tuple(int(c) for c in colours[counts.argmax()])


def ink_fraction(image: Image.Image, box: tuple[int, int, int, int], ink: tuple[int, int, int]) -> float:
    pixels = crop(image, box).reshape(-1, 3).astype(int)
    return float((np.abs(pixels - np.array(ink)).sum(axis=1) < 60).mean())


@pytest.mark.parametrize("kind", list(CARDS))
def test_card_screenshots_in_three_languages(screen: GateScreen, shots: Path, kind: str) -> None:
    panel = screen.layout.panel
    rendered: dict[str, np.ndarray] = {}
    for lang in LANGUAGES:
        card = dataclasses.replace(CARDS[kind], lang=lang)
        image = screen.render(ScreenState(status=STATUS, preview=synthetic_frame(), card=card, lang=lang))
        image.save(shots / f"{kind}-{lang}.png")
        assert image.size == (1024, 600) and image.mode == "RGB"
        assert dominant(image, panel) == theme.CARD_FILL[CardKind(kind)]
        ink = ink_fraction(image, panel, theme.CARD_TEXT[CardKind(kind)])
        assert 0.03 < ink < 0.5, f"{kind}/{lang}: text covers {ink:.1%} of the card"
        rendered[lang] = crop(image, panel)
    assert not np.array_equal(rendered["kk"], rendered["ru"])
    assert not np.array_equal(rendered["ru"], rendered["en"])
    assert not np.array_equal(rendered["kk"], rendered["en"])
    assert (shots / f"{kind}-kk.png").stat().st_size > 5000


def test_kazakh_letters_are_real_glyphs(screen: GateScreen) -> None:
    for face in (screen.faces.regular, screen.faces.bold):
        for letter in KAZAKH_LETTERS:
            assert has_glyph(face, letter), f"{letter} renders as tofu in {face.name}"
        assert not has_glyph(face, "漢")  # the check does detect tofu
        with pytest.raises(GlyphMissingError, match=r"U\+6F22"):
            check_coverage(face, ["Сәлем 漢"])


def test_kazakh_name_renders_differently_from_tofu(screen: GateScreen) -> None:
    """Each Kazakh letter in a name draws its own shape, unlike missing glyphs which all look alike."""
    cards = [
        ResultCard(CardKind.ACCEPTED, "kk", name=name, time=AT, direction=Direction.IN)
        for name in ("Ә", "Ғ", "Қ", "\U0010fffd", "\U0010fffe")
    ]
    panels = [crop(screen.render(ScreenState(card=c)), screen.layout.panel) for c in cards]
    kazakh, tofu = panels[:3], panels[3:]
    assert np.array_equal(tofu[0], tofu[1])  # two unassigned code points → the same box
    for i, a in enumerate(kazakh):
        assert not np.array_equal(a, tofu[0])
        for b in kazakh[i + 1 :]:
            assert not np.array_equal(a, b)


def test_error_states_are_visible_without_a_card(screen: GateScreen, shots: Path) -> None:
    footer = screen.layout.footer
    calm = screen.render(ScreenState(status=STATUS))
    assert dominant(calm, footer) == theme.BACKGROUND
    for flag in ("disk_full", "roster_stale", "clock_synced", "database_locked"):
        value = flag != "clock_synced"
        status = dataclasses.replace(STATUS, **{flag: value})  # type: ignore[arg-type]
        image = screen.render(ScreenState(status=status, preview=synthetic_frame()))
        assert dominant(image, footer) == theme.ALERT, flag
        assert ink_fraction(image, footer, theme.DARK_TEXT) > 0.02, flag
    lost = screen.render(ScreenState(status=dataclasses.replace(STATUS, camera_ok=False), lang="ru"))
    lost.save(shots / "camera-lost-ru.png")
    assert dominant(lost, screen.layout.preview) == theme.NO_CAMERA
    assert dominant(lost, footer) == theme.ALERT


def test_alert_text_follows_the_ui_language(screen: GateScreen) -> None:
    status = dataclasses.replace(STATUS, disk_full=True)
    strips = {
        lang: crop(screen.render(ScreenState(status=status, lang=lang)), screen.layout.footer)
        for lang in LANGUAGES
    }
    assert not np.array_equal(strips["kk"], strips["ru"])
    assert not np.array_equal(strips["ru"], strips["en"])


def test_preview_is_scaled_and_mirrored(screen: GateScreen) -> None:
    frame = np.zeros((720, 1280, 3), np.uint8)
    frame[:, :640] = (255, 0, 0)  # the camera's left half is red
    x0, y0, x1, y1 = screen.layout.preview
    image = screen.render(ScreenState(preview=frame))
    mid = (y0 + y1) // 2
    assert image.getpixel((x0 + 5, mid)) == (0, 0, 0)
    assert image.getpixel((x1 - 5, mid)) == (255, 0, 0)  # mirrored like a looking glass
    plain = GateScreen(ScreenConfig(mirror_preview=False, framing_guide=False)).render(
        ScreenState(preview=frame)
    )
    assert plain.getpixel((x0 + 5, mid)) == (255, 0, 0)
    grey = screen.render(ScreenState(preview=np.full((480, 640), 200, np.uint8)))
    assert grey.getpixel((x0 + 5, y0 + 5)) == (200, 200, 200)
    with pytest.raises(ValueError, match="uint8"):
        screen.render(ScreenState(preview=np.zeros((10, 10, 3), np.float32)))


def test_selected_direction_is_shown(screen: GateScreen) -> None:
    auto = screen.render(ScreenState(status=STATUS))
    out = screen.render(ScreenState(status=STATUS, selected_direction=Direction.OUT))
    assert not np.array_equal(crop(auto, screen.layout.panel), crop(out, screen.layout.panel))


def test_status_bar_changes_once_a_minute(screen: GateScreen) -> None:
    bar = screen.layout.status
    a = crop(screen.render(ScreenState(status=STATUS)), bar)
    b = crop(
        screen.render(ScreenState(status=dataclasses.replace(STATUS, clock=MORNING.replace(second=59)))), bar
    )
    c = crop(
        screen.render(ScreenState(status=dataclasses.replace(STATUS, clock=MORNING.replace(minute=13)))), bar
    )
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_small_display_and_today_list(shots: Path) -> None:
    small = GateScreen(ScreenConfig(width=800, height=480))
    card = dataclasses.replace(CARDS["accepted"], name="Әбілқайыр Нұрсұлтанұлы Сәрсенбайұлы")
    image = small.render(ScreenState(status=STATUS, preview=synthetic_frame(), card=card))
    image.save(shots / "accepted-long-name-800x480.png")
    assert image.size == (800, 480)
    assert dominant(image, small.layout.panel) == theme.CARD_FILL[CardKind.ACCEPTED]
    pages = {}
    for lang in LANGUAGES:
        today = small.render_today(sample_today(), lang, STATUS)
        today.save(shots / f"today-{lang}.png")
        assert today.size == (800, 480)
        pages[lang] = np.asarray(today)
    assert not np.array_equal(pages["kk"], pages["en"])


def test_missing_font_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KGATE_FONT_DIR", raising=False)
    with pytest.raises(FontNotFoundError, match="fonts-dejavu-core") as info:
        GateScreen(ScreenConfig(font_dirs=(str(tmp_path),)))
    assert isinstance(info.value, FileNotFoundError)
    (tmp_path / "DejaVuSans.ttf").write_bytes(b"not a font")
    with pytest.raises(FontNotFoundError):
        GateScreen(ScreenConfig(font_dirs=(str(tmp_path),)))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"width": 100}, "screen.width"), ({"height": 5000}, "screen.height"), ({"lang": "de"}, "screen.lang")],
)
def test_config_errors_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ScreenConfigError, match=re.escape(field)):
        ScreenConfig(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ScreenConfigError, match=r"screen\.colour"):
        ScreenConfig.from_mapping({"colour": "red"})


def test_render_array_and_status_without_data(screen: GateScreen) -> None:
    array = screen.render_array(ScreenState(status=StatusInfo()))
    assert array.shape == (600, 1024, 3) and array.dtype == np.uint8
