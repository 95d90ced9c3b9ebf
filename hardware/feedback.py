"""Lights, sound, door relay and In/Out buttons at the gate, on gpiozero 2.x.

:class:`Feedback` is the small domain interface the terminal talks to: ``accepted(direction)``,
``refused()``, ``fault()``, ``clear()`` and the button-selected ``selected_direction``.
:class:`NullFeedback` does nothing (headless runs, the demo); :class:`GpioFeedback` drives real pins.
gpiozero and every pin library are imported only when a :class:`GpioFeedback` is built, and the pin
factory is chosen at run time: lgpio on a Pi, ``MockFactory`` in tests.

Wiring (defaults of :class:`FeedbackConfig`, BCM numbers; see ``hardware/README.md``): green LED on
GPIO17 and red LED on GPIO27, each through 220 Ω to GND; active 5 V buzzer switched by an NPN
transistor from GPIO22; optional high-level-trigger relay board on GPIO24; In button GPIO5 and Out
button GPIO6, each to GND (internal pull-ups).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, Self

from kgate.errors import KgateError, UsageError

BCM_PINS = range(0, 28)


class InOut(StrEnum):
    """The gate's In and Out, electrically: which button was pressed, which way an accepted signal shows.

    Only the wiring's notion; the terminal decides which way a child goes (``terminal.decide.Direction``).
    """

    IN = "in"
    OUT = "out"


class FeedbackConfigError(UsageError):
    """A ``[feedback]`` setting is wrong; the message names the key."""


class FeedbackUnavailable(KgateError, ImportError):
    """gpiozero or the requested pin factory cannot be loaded on this machine."""


@dataclass(frozen=True)
class FeedbackConfig:
    """Pins (BCM numbers) and timings for :class:`GpioFeedback`; defaults match hardware/README.md."""

    green_pin: int = 17
    red_pin: int = 27
    buzzer_pin: int = 22
    relay_pin: int | None = None  # 24 in the reference wiring, when a door relay is fitted
    relay_active_high: bool = True
    in_button_pin: int | None = 5
    out_button_pin: int | None = 6
    accept_seconds: float = 1.5
    refuse_seconds: float = 2.0
    beep_seconds: float = 0.1
    relay_pulse_seconds: float = 1.0
    direction_timeout_seconds: float = 30.0
    button_bounce_seconds: float = 0.05
    pin_factory: str | None = None  # "lgpio", "mock", …; None: gpiozero's default / $GPIOZERO_PIN_FACTORY

    def __post_init__(self) -> None:
        pins: dict[str, int] = {}
        for name in ("green_pin", "red_pin", "buzzer_pin", "relay_pin", "in_button_pin", "out_button_pin"):
            value = getattr(self, name)
            if value is None and name in ("green_pin", "red_pin", "buzzer_pin"):
                raise FeedbackConfigError(f"feedback.{name}: required")
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value not in BCM_PINS:
                raise FeedbackConfigError(f"feedback.{name}: {value!r} is not a BCM GPIO number (0–27)")
            for other, pin in pins.items():
                if pin == value:
                    raise FeedbackConfigError(f"feedback.{name}: GPIO{value} is already feedback.{other}")
            pins[name] = value
        for name in (
            "accept_seconds",
            "refuse_seconds",
            "beep_seconds",
            "relay_pulse_seconds",
            "direction_timeout_seconds",
            "button_bounce_seconds",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
                raise FeedbackConfigError(
                    f"feedback.{name}: {value!r} must be a number of seconds in (0, 3600]"
                )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> FeedbackConfig:
        """Build from a TOML ``[feedback]`` table; unknown keys are an error naming the key."""
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise FeedbackConfigError(f"feedback.{key}: unknown setting")
        return cls(**dict(data))


class Feedback:
    """The feedback interface; this base makes no light or sound (see :class:`NullFeedback`).

    The In/Out selection is shared by every implementation: a button press (or a key in the desktop
    window) selects a direction that falls back to automatic after ``direction_timeout`` seconds.
    """

    def __init__(
        self,
        *,
        direction_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_direction: Callable[[InOut | None], None] | None = None,
    ) -> None:
        self._timeout = direction_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._selected: InOut | None = None
        self._deadline = 0.0
        self.on_direction = on_direction

    def accepted(self, direction: InOut) -> None:
        """The entry was stored (COMMIT returned): green light, one short beep, door pulse."""

    def refused(self) -> None:
        """Badge or face refused: red light, three short beeps."""

    def fault(self) -> None:
        """The terminal cannot record (camera lost, disk full…): slow red blink until :meth:`clear`."""

    def clear(self) -> None:
        """All lights and sound off."""

    def close(self) -> None:
        """Release the pins."""

    def select_direction(self, direction: InOut | None) -> None:
        """Force the next check-ins to ``direction`` for a while; ``None`` returns to automatic."""
        with self._lock:
            self._selected = direction
            self._deadline = self._clock() + self._timeout
        if self.on_direction is not None:
            self.on_direction(direction)

    @property
    def selected_direction(self) -> InOut | None:
        """The button-selected direction, or ``None`` (automatic) once the timeout has passed."""
        with self._lock:
            if self._selected is not None and self._clock() >= self._deadline:
                self._selected = None
            return self._selected

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NullFeedback(Feedback):
    """No lights, no sound: the headless path, like picamera2's ``NullPreview``."""


def load_pin_factory(name: str | None) -> Any:
    """The gpiozero pin factory called ``name`` ("lgpio", "mock", …), or ``None`` for gpiozero's default."""
    if name is None:
        return None
    from importlib.metadata import entry_points  # noqa: PLC0415

    factories = {ep.name: ep for ep in entry_points(group="gpiozero_pin_factories")}
    if not factories:
        raise FeedbackUnavailable("gpiozero is not installed (pip install gpiozero; on a Pi also lgpio)")
    if name not in factories:
        raise FeedbackConfigError(
            f"feedback.pin_factory: {name!r} is not one of {', '.join(sorted(factories))}"
        )
    try:
        return factories[name].load()()
    except Exception as exc:  # the factory names its own missing library or device
        raise FeedbackUnavailable(f"feedback.pin_factory: cannot use {name!r}: {exc}") from exc


class GpioFeedback(Feedback):
    """Green/red LEDs, active buzzer, optional door relay and In/Out buttons on GPIO.

    Wire each LED anode → GPIO, cathode → 220 Ω → GND; the buzzer's low side through an NPN
    transistor (base 1 kΩ from the GPIO, 10 kΩ base pull-down, flyback diode across the buzzer);
    buttons between the GPIO and GND. Patterns run in gpiozero's background threads, so calls return
    at once.
    """

    def __init__(
        self,
        config: FeedbackConfig | None = None,
        *,
        pin_factory: Any = None,
        clock: Callable[[], float] = time.monotonic,
        on_direction: Callable[[InOut | None], None] | None = None,
    ) -> None:
        self.config = cfg = config or FeedbackConfig()
        super().__init__(
            direction_timeout=cfg.direction_timeout_seconds, clock=clock, on_direction=on_direction
        )
        try:
            import gpiozero  # noqa: PLC0415
        except ImportError as exc:
            raise FeedbackUnavailable("gpiozero is not installed (pip install gpiozero)") from exc
        factory = pin_factory if pin_factory is not None else load_pin_factory(cfg.pin_factory)
        self._devices: list[Any] = []

        def own(device: Any) -> Any:
            self._devices.append(device)
            return device

        try:
            self._green = own(gpiozero.LED(cfg.green_pin, pin_factory=factory))
            self._red = own(gpiozero.LED(cfg.red_pin, pin_factory=factory))
            self._buzzer = own(gpiozero.Buzzer(cfg.buzzer_pin, pin_factory=factory))
            self._relay = None
            if cfg.relay_pin is not None:
                self._relay = own(
                    gpiozero.DigitalOutputDevice(
                        cfg.relay_pin,
                        active_high=cfg.relay_active_high,
                        initial_value=False,
                        pin_factory=factory,
                    )
                )
            for pin, direction in ((cfg.in_button_pin, InOut.IN), (cfg.out_button_pin, InOut.OUT)):
                if pin is not None:
                    button = own(
                        gpiozero.Button(
                            pin, pull_up=True, bounce_time=cfg.button_bounce_seconds, pin_factory=factory
                        )
                    )
                    button.when_pressed = self._selector(direction)
        except gpiozero.GPIOZeroError as exc:
            self.close()
            raise FeedbackUnavailable(f"feedback: cannot open GPIO pins: {exc}") from exc

    def _selector(self, direction: InOut) -> Callable[[], None]:
        return lambda: self.select_direction(direction)

    def accepted(self, direction: InOut) -> None:
        cfg = self.config
        self._red.off()
        self._green.blink(on_time=cfg.accept_seconds, off_time=0, n=1, background=True)
        self._buzzer.beep(on_time=cfg.beep_seconds, off_time=0, n=1, background=True)
        if self._relay is not None:
            self._relay.blink(on_time=cfg.relay_pulse_seconds, off_time=0, n=1, background=True)

    def refused(self) -> None:
        cfg = self.config
        self._green.off()
        self._red.blink(on_time=cfg.refuse_seconds, off_time=0, n=1, background=True)
        self._buzzer.beep(on_time=cfg.beep_seconds, off_time=cfg.beep_seconds, n=3, background=True)

    def fault(self) -> None:
        self._green.off()
        self._red.blink(on_time=0.5, off_time=0.5, n=None, background=True)
        self._buzzer.beep(on_time=self.config.beep_seconds * 6, off_time=0, n=1, background=True)

    def clear(self) -> None:
        for device in (self._green, self._red, self._buzzer):
            device.off()

    def close(self) -> None:
        while self._devices:
            self._devices.pop().close()


def open_feedback(
    config: FeedbackConfig | None,
    *,
    pin_factory: Any = None,
    on_direction: Callable[[InOut | None], None] | None = None,
) -> Feedback:
    """GPIO feedback for ``config``, or :class:`NullFeedback` when ``config`` is ``None`` (headless)."""
    if config is None:
        return NullFeedback(on_direction=on_direction)
    return GpioFeedback(config, pin_factory=pin_factory, on_direction=on_direction)
