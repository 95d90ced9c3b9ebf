"""Feedback devices driven and observed from the electrical side with gpiozero's MockFactory."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import pytest

from hardware.feedback import (
    FeedbackConfig,
    FeedbackConfigError,
    GpioFeedback,
    InOut,
    NullFeedback,
    open_feedback,
)
from tests.conftest import READY_S, wait_until

mock = pytest.importorskip("gpiozero.pins.mock")

FAST = FeedbackConfig(
    relay_pin=24,
    accept_seconds=0.2,
    refuse_seconds=0.2,
    beep_seconds=0.05,
    relay_pulse_seconds=0.1,
    button_bounce_seconds=0.001,
)


def wait_for(condition: Callable[[], bool], timeout: float = READY_S) -> None:
    """Until ``condition()`` (gpiozero's threads run late on a loaded machine)."""
    wait_until(condition, "the feedback's pins or buttons", timeout, interval=0.005)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def factory() -> Iterator[object]:
    f = mock.MockFactory()
    yield f
    f.reset()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def feedback(factory: object, clock: Clock) -> Iterator[GpioFeedback]:
    with GpioFeedback(FAST, pin_factory=factory, clock=clock) as fb:
        assert isinstance(fb, GpioFeedback)
        yield fb


def pin(factory: object, number: int) -> object:
    return factory.pin(number)  # type: ignore[attr-defined]


def states(factory: object, number: int) -> list[bool]:
    return [bool(s.state) for s in pin(factory, number).states]  # type: ignore[attr-defined]


def test_accepted_lights_green_beeps_once_and_pulses_the_relay(
    feedback: GpioFeedback, factory: object
) -> None:
    feedback.accepted(InOut.IN)
    wait_for(lambda: pin(factory, 17).state)  # type: ignore[attr-defined]
    assert not pin(factory, 27).state  # type: ignore[attr-defined]
    wait_for(lambda: states(factory, 24) == [False, True, False])  # relay pulsed and released
    wait_for(lambda: not pin(factory, 17).state)  # type: ignore[attr-defined]
    assert states(factory, 22) == [False, True, False]  # exactly one beep
    assert states(factory, 27) == [False]


def test_refused_lights_red_and_beeps_three_times(feedback: GpioFeedback, factory: object) -> None:
    feedback.refused()
    wait_for(lambda: pin(factory, 27).state)  # type: ignore[attr-defined]
    wait_for(lambda: states(factory, 22) == [False, True, False] * 1 + [True, False] * 2)
    assert states(factory, 17) == [False]
    assert states(factory, 24) == [False]  # the door stays shut


def test_fault_blinks_red_until_cleared(feedback: GpioFeedback, factory: object) -> None:
    feedback.fault()
    wait_for(lambda: pin(factory, 27).state)  # type: ignore[attr-defined]
    feedback.clear()
    wait_for(lambda: not pin(factory, 27).state and not pin(factory, 22).state)  # type: ignore[attr-defined]


def test_relay_active_low_board_is_released_high(factory: object) -> None:
    cfg = FeedbackConfig(relay_pin=24, relay_active_high=False, relay_pulse_seconds=0.05)
    with GpioFeedback(cfg, pin_factory=factory):
        assert pin(factory, 24).state  # type: ignore[attr-defined]


def test_buttons_select_direction_then_time_out(
    feedback: GpioFeedback, factory: object, clock: Clock
) -> None:
    seen: list[InOut | None] = []
    feedback.on_direction = seen.append
    assert feedback.selected_direction is None
    out_button = pin(factory, 6)
    out_button.drive_low()  # type: ignore[attr-defined]
    wait_for(lambda: feedback.selected_direction is InOut.OUT)
    out_button.drive_high()  # type: ignore[attr-defined]
    clock.now += 5
    in_button = pin(factory, 5)
    time.sleep(0.01)  # past the bounce time
    in_button.drive_low()  # type: ignore[attr-defined]
    wait_for(lambda: feedback.selected_direction is InOut.IN)
    assert seen == [InOut.OUT, InOut.IN]
    clock.now += FAST.direction_timeout_seconds + 1
    assert feedback.selected_direction is None  # back to automatic


def test_close_releases_pins(factory: object) -> None:
    fb = GpioFeedback(FAST, pin_factory=factory)
    fb.close()
    with GpioFeedback(FAST, pin_factory=factory):  # the same pins can be opened again
        pass


def test_pin_factory_by_name() -> None:
    cfg = FeedbackConfig(pin_factory="mock")
    with open_feedback(cfg) as fb:
        assert isinstance(fb, GpioFeedback)
        fb.accepted(InOut.OUT)


def test_null_feedback_is_silent_but_tracks_direction() -> None:
    fb = open_feedback(None)
    assert isinstance(fb, NullFeedback)
    fb.accepted(InOut.IN)
    fb.refused()
    fb.fault()
    fb.clear()
    fb.select_direction(InOut.OUT)
    assert fb.selected_direction is InOut.OUT
    fb.close()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"green_pin": 40}, "feedback.green_pin"),
        ({"red_pin": 17}, "feedback.red_pin"),
        ({"relay_pin": True}, "feedback.relay_pin"),
        ({"relay_pulse_seconds": 0}, "feedback.relay_pulse_seconds"),
        ({"beep_seconds": "short"}, "feedback.beep_seconds"),
    ],
)
def test_config_errors_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(FeedbackConfigError, match=re.escape(field)) as info:
        FeedbackConfig(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


def test_config_from_mapping_rejects_unknown_keys() -> None:
    assert FeedbackConfig.from_mapping({"relay_pin": 24}).relay_pin == 24
    with pytest.raises(FeedbackConfigError, match=r"feedback\.grean_pin"):
        FeedbackConfig.from_mapping({"grean_pin": 17})


def test_unknown_pin_factory_is_named() -> None:
    with pytest.raises(FeedbackConfigError, match=r"feedback\.pin_factory"):
        GpioFeedback(FeedbackConfig(pin_factory="nonesuch"))
