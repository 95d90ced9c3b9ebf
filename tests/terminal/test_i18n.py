"""The message catalogues: same keys and placeholders in kk, ru and en; lookups fail clearly."""

from __future__ import annotations

import pytest

from terminal.i18n import (
    CATALOGUES,
    LANGUAGES,
    UnknownLanguageError,
    UnknownMessageError,
    check_lang,
    placeholders,
    translate,
)

KAZAKH_ONLY = set("әғқңөұүһіӘҒҚҢӨҰҮҺІ")


def test_three_languages() -> None:
    assert LANGUAGES == ("kk", "ru", "en")
    assert set(CATALOGUES) == set(LANGUAGES)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_key_in_every_language(lang: str) -> None:
    reference = set(CATALOGUES["en"])
    assert set(CATALOGUES[lang]) == reference  # type: ignore[index]


@pytest.mark.parametrize("key", sorted(CATALOGUES["en"]))
def test_placeholders_match_across_languages(key: str) -> None:
    expected = placeholders(CATALOGUES["en"][key])
    for lang in LANGUAGES:
        text = CATALOGUES[lang][key]
        assert text.strip(), f"{lang}:{key} is empty"
        assert placeholders(text) == expected, f"{lang}:{key} has {placeholders(text)}, en has {expected}"


def test_gate_messages_the_issue_asks_for() -> None:
    needed = {
        "greeting",
        "direction.in",
        "direction.out",
        "card.already_in",
        "refused.unknown_badge",
        "refused.revoked_badge",
        "refused.unreadable",
        "refused.malformed",
        "refused.face_mismatch",
        "refused.closed",
        "error.camera_lost",
        "error.disk_full",
        "error.roster_stale",
        "error.clock_unsynced",
        "error.database_locked",
        "today.in",
        "today.left",
        "today.absent",
    }
    assert needed <= set(CATALOGUES["en"])


def test_greeting_and_directions() -> None:
    assert translate("greeting", "kk", name="Аружан") == "Сәлем, Аружан!"
    assert translate("direction.in", "kk") == "кірді"
    assert translate("direction.out", "kk") == "шықты"
    assert translate("direction.in", "en") == "checked in"
    assert translate("greeting", "ru", name="Аружан") == "Привет, Аружан!"


def test_kazakh_catalogue_is_kazakh() -> None:
    kk_text = "".join(CATALOGUES["kk"].values())
    ru_text = "".join(CATALOGUES["ru"].values())
    assert KAZAKH_ONLY & set(kk_text)
    assert not KAZAKH_ONLY & set(ru_text)
    differing = [k for k in CATALOGUES["kk"] if CATALOGUES["kk"][k] != CATALOGUES["ru"][k]]
    assert len(differing) > len(CATALOGUES["kk"]) * 0.8


def test_unknown_language_and_key_are_named() -> None:
    with pytest.raises(UnknownLanguageError, match="'de'") as info:
        translate("greeting", "de", name="x")
    assert isinstance(info.value, LookupError)
    with pytest.raises(UnknownMessageError, match=r"no\.such"):
        translate("no.such", "kk")
    with pytest.raises(UnknownMessageError, match="'name'"):
        translate("greeting", "en")
    assert check_lang("ru") == "ru"
