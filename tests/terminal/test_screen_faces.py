"""The gate screen in the face modes: the face guide and "look at the camera" on the idle screen, and the
face refusal cards, as screenshots in kk, ru and en (``KGATE_SCREENS_DIR=DIR`` keeps them)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from terminal.i18n import LANGUAGES, t
from terminal.screen import CardKind, GateScreen, ResultCard, ScreenState, theme
from terminal.screen.samples import STATUS, synthetic_frame
from terminal.screen.text import fit

AT = dt.time(8, 12)
CARDS = {
    "face-mismatch": ResultCard(CardKind.REFUSED, time=AT, message_key="refused.face_mismatch"),
    "no-face-consent": ResultCard(CardKind.REFUSED, time=AT, message_key="refused.no_face_consent"),
    "face-unknown": ResultCard(CardKind.REFUSED, time=AT, message_key="refused.face_unknown"),
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


def test_idle_face_mode_screens(screen: GateScreen, shots: Path) -> None:
    x0, y0, x1, y1 = screen.layout.preview
    dark = np.zeros((480, 640, 3), np.uint8)  # a dark camera view: the guide's white is easy to find
    qr = screen.render(ScreenState(status=STATUS, preview=dark, lang="en"))
    panels = {}
    for lang in LANGUAGES:
        for mode in ("face", "qr+face"):
            image = screen.render(ScreenState(status=STATUS, preview=dark, lang=lang, mode=mode))
            image.save(shots / f"idle-{mode.replace('+', '-')}-{lang}.png")
            panels[mode, lang] = crop(image, screen.layout.panel)
            preview = crop(image, screen.layout.preview)
            # The oval: white pixels on the preview's centre row left and right of the middle, not in it.
            row = preview[round((y1 - y0) * 0.44)]
            white = np.flatnonzero((row == theme.GUIDE).all(axis=1))
            middle = (x1 - x0) // 2
            assert white.size and white.min() < middle - 60 and white.max() > middle + 60
            assert not (row[middle - 40 : middle + 40] == theme.GUIDE).all(axis=1).any()
            # The caption band at the bottom of the preview carries text.
            band = preview[-screen.layout.px(40) :]
            assert (band == theme.TEXT).all(axis=2).mean() > 0.01
        assert not np.array_equal(panels["face", lang], panels["qr+face", lang])  # different prompts
    assert not np.array_equal(panels["face", "kk"], panels["face", "ru"])
    assert not np.array_equal(crop(qr, screen.layout.panel), panels["face", "en"])
    # The caption fits on one line at a readable size in every language.
    for lang in LANGUAGES:
        font, lines = fit(
            screen.faces,
            t("prompt.face_guide", lang),
            (x1 - x0) - 2 * screen.layout.px(12),
            screen.layout.px(26),
            min_size=screen.layout.px(14),
            bold=True,
        )
        assert len(lines) == 1 and font.getlength(lines[0]) <= (x1 - x0) - 2 * screen.layout.px(12)


@pytest.mark.parametrize("name", list(CARDS))
def test_face_refusal_cards(screen: GateScreen, shots: Path, name: str) -> None:
    panel = screen.layout.panel
    rendered = {}
    for lang in LANGUAGES:
        card = dataclasses.replace(CARDS[name], lang=lang)
        state = ScreenState(status=STATUS, preview=synthetic_frame(), card=card, lang=lang, mode="face")
        image = screen.render(state)
        image.save(shots / f"refused-{name}-{lang}.png")
        pixels = crop(image, panel).reshape(-1, 3)
        colours, counts = np.unique(pixels, axis=0, return_counts=True)
        assert tuple(int(c) for c in colours[counts.argmax()]) == theme.CARD_FILL[CardKind.REFUSED]
        ink = float(
            (np.abs(pixels.astype(int) - np.array(theme.CARD_TEXT[CardKind.REFUSED])).sum(axis=1) < 60).mean()
        )
        assert 0.03 < ink < 0.5, f"{name}/{lang}: text covers {ink:.1%} of the card"
        rendered[lang] = crop(image, panel)
        # The whole message is on the card, not cut off with an ellipsis (the card's own fit rule).
        lay = screen.layout
        inner = (panel[2] - panel[0]) - 2 * lay.px(26)
        reason = t(CARDS[name].message_key or "", lang)
        _, lines = fit(screen.faces, reason, inner, lay.px(52), min_size=lay.px(28), bold=True, max_lines=3)
        assert not lines[-1].endswith("…"), f"{name}/{lang}: {lines}"
    assert not np.array_equal(rendered["kk"], rendered["ru"])
    assert not np.array_equal(rendered["ru"], rendered["en"])
