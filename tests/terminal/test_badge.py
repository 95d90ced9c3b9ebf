"""Badge payloads: the format round-trips, and the parser refuses everything else with a BadgeError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from terminal.badge import (
    MAX_PAYLOAD_BYTES,
    PAYLOAD_CHARS,
    SERIAL_ALPHABET,
    badge_qr,
    check_char,
    encode_badge,
    new_serial,
    parse_badge,
    serial_from_bytes,
)
from terminal.errors import (
    BadgeCheckFailed,
    BadgeError,
    MalformedBadge,
    OversizedBadge,
    UnsupportedBadgeVersion,
)

GOOD = encode_badge(serial_from_bytes(bytes(range(10))))


def test_new_badge_round_trips_and_serials_differ() -> None:
    serials = {new_serial() for _ in range(100)}
    assert len(serials) == 100
    for serial in serials:
        payload = encode_badge(serial)
        assert len(payload) == PAYLOAD_CHARS == 20
        parsed = parse_badge(payload.encode())
        assert parsed.serial == serial and parsed.version == 1
        assert parsed.text == payload
        assert len(parsed.serial_bytes) * 8 >= 80


def test_badge_qr_is_alphanumeric_version_1_level_m() -> None:
    qr = badge_qr(new_serial())
    assert (qr.version, qr.error, qr.mode) == (1, "M", "alphanumeric")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", MalformedBadge),
        (GOOD.lower().encode(), MalformedBadge),
        (GOOD.encode() + b"\x00", MalformedBadge),
        (GOOD[:-1].encode(), MalformedBadge),
        (b"KG2" + GOOD[3:].encode(), UnsupportedBadgeVersion),
        (b"XX1" + GOOD[3:].encode(), MalformedBadge),
        (GOOD.replace(GOOD[5], "0" if GOOD[5] != "0" else "1", 1).encode(), MalformedBadge),
        (b"K" * (MAX_PAYLOAD_BYTES + 1), OversizedBadge),
        (b"A" * 2953, OversizedBadge),
        ("KG1АВСDEFGHIJKLMNOP".encode(), MalformedBadge),  # Cyrillic look-alikes
        (b"KG1' OR 1=1;--$(rm -rf /)", MalformedBadge),
        (b"\xff\xfe\xfa", MalformedBadge),
    ],
)
def test_parser_refuses_bad_payloads(data: bytes, error: type[BadgeError]) -> None:
    with pytest.raises(error):
        parse_badge(data)


def test_forged_serial_with_wrong_check_char_is_refused() -> None:
    serial = GOOD[3:-1]
    wrong = next(c for c in SERIAL_ALPHABET if c != check_char(serial))
    with pytest.raises(BadgeCheckFailed):
        parse_badge(f"KG1{serial}{wrong}".encode())


def test_every_single_character_misread_is_caught() -> None:
    for position in range(3, PAYLOAD_CHARS):
        for char in SERIAL_ALPHABET:
            if char != GOOD[position]:
                with pytest.raises(BadgeError):
                    parse_badge((GOOD[:position] + char + GOOD[position + 1 :]).encode())


def test_badge_errors_are_value_errors_and_kgate_errors() -> None:
    from kgate.errors import KgateError

    assert issubclass(OversizedBadge, ValueError)
    assert issubclass(OversizedBadge, KgateError)


_hostile = st.one_of(
    st.binary(min_size=0, max_size=2953),
    st.binary(min_size=2900, max_size=2953),
    st.text(alphabet=SERIAL_ALPHABET + "0189 $%*+-./:", min_size=15, max_size=25).map(str.encode),
    st.text(alphabet="'\";`$|&<>(){}\\\x00\x01\x1b\n\r\tКАВЕМНОРСТХкаео", max_size=64).map(str.encode),
    st.builds(
        lambda s, c: f"KG1{s}{c}".encode(),
        st.text(SERIAL_ALPHABET, min_size=16, max_size=16),
        st.sampled_from(SERIAL_ALPHABET),
    ),
    st.binary(max_size=40).map(lambda b: GOOD.encode()[:10] + b),
)


@settings(max_examples=600, deadline=None)
@given(_hostile)
def test_fuzzed_payloads_raise_only_badge_errors(data: bytes) -> None:
    try:
        parsed = parse_badge(data)
    except BadgeError:
        return
    # Whatever was accepted is a well-formed badge that re-encodes to exactly the scanned bytes.
    assert parsed.text.encode() == data
