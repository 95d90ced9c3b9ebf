"""The terminal's configuration: ``/etc/kgate/terminal.toml`` as a frozen dataclass, validated once.

Every section and key is documented in ``docs/terminal.md``. Errors are :class:`ConfigError` (a
:class:`~kgate.errors.UsageError`, exit 2) whose message starts with the key, e.g.
``camera.size: expected [width, height]``. Relative ledger and roster paths are resolved against the
state directory (``$STATE_DIRECTORY``, systemd's ``StateDirectory=``, else ``/var/lib/kgate``); relative
replay paths against the config file's folder.

Local changes live in drop-ins: every ``*.toml`` in ``terminal.toml.d/`` beside the file (by name order)
is merged over it, table by table and key by key (:func:`merge_dropins`), before validation. Provisioning
owns ``terminal.toml`` and rewrites it; it never touches ``terminal.toml.d/`` (docs/provisioning.md).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hardware.camera import BACKENDS as CAMERA_BACKENDS
from hardware.camera import CameraConfig, Region
from hardware.display import DisplayConfigError, display_backend
from hardware.errors import CameraConfigError
from hardware.feedback import FeedbackConfig
from kgate.bounded import KiB, loads_toml_limited, read_limited
from kgate.errors import InputError, KgateError, UsageError
from terminal.decide import SECONDS_RANGE, DecideConfig
from terminal.i18n import DEFAULT_LANG, is_lang
from terminal.screen.config import ScreenConfig

#: A full terminal.toml is about 2 KiB; anything near this size is not a config.
MAX_CONFIG_BYTES = 256 * KiB
DEFAULT_STATE_DIR = Path("/var/lib/kgate")
DEFAULT_CONFIG_DIR = Path("/etc/kgate")
CONFIG_FILE = "terminal.toml"
DROPIN_SUFFIX = ".d"  # terminal.toml.d/*.toml: local changes merged over terminal.toml
MODES = ("qr", "qr+face", "face")  # the face modes: terminal/face/check.py, docs/faces.md
PICKUP_POLICIES = ("off", "guardian")  # terminal.pickup.POLICIES


class ConfigError(UsageError):
    """The terminal's configuration is wrong; the message starts with the key (``camera.size: ...``)."""


def _dirs(variable: str, fallback: Path) -> Path:
    """The first directory systemd passed in ``variable`` (colon-separated), else ``fallback``."""
    value = os.environ.get(variable, "")
    first = value.split(":", 1)[0]
    return Path(first) if first else fallback


def state_dir() -> Path:
    """``$STATE_DIRECTORY`` (systemd ``StateDirectory=kgate``), else ``/var/lib/kgate``."""
    return _dirs("STATE_DIRECTORY", DEFAULT_STATE_DIR)


def config_dir() -> Path:
    """``$CONFIGURATION_DIRECTORY`` (systemd ``ConfigurationDirectory=kgate``), else ``/etc/kgate``."""
    return _dirs("CONFIGURATION_DIRECTORY", DEFAULT_CONFIG_DIR)


def default_config_path() -> Path:
    """Where ``kgate terminal run`` looks without ``--config``."""
    return config_dir() / CONFIG_FILE


@dataclass(frozen=True)
class LedgerConfig:
    """``[ledger]``: the device log. ``origin`` is needed only to create it on first start."""

    path: Path
    key: Path
    origin: str | None = None


@dataclass(frozen=True)
class GateConfig:
    """``[gate]``: the decision mode and rules (``decide``, defined in terminal/decide.py), how long the
    gate stays quiet after a refusal and shows a result card, and the cards' language.

    ``pickup``: ``"guardian"`` makes every check-out need an authorized guardian's badge shown within
    ``pickup_window_seconds`` of the child's (:mod:`terminal.pickup`); ``"off"`` does not.
    """

    mode: str = "qr"
    decide: DecideConfig = field(default_factory=DecideConfig)
    language: str = DEFAULT_LANG
    quiet_seconds: float = 3.0
    card_seconds: float = 4.0
    pickup: str = "off"
    pickup_window_seconds: float = 30.0


@dataclass(frozen=True)
class DisplayConfig:
    """``[display]``: the backend and its options (see :func:`hardware.display.open_display`)."""

    backend: str = "null"
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceConfig:
    """``[service]``: camera retry backoff and the status file the sync agent reports to the register."""

    retry_initial_seconds: float = 0.5
    retry_max_seconds: float = 10.0
    status_file: Path | None = None


@dataclass(frozen=True)
class TerminalConfig:
    """Everything ``kgate terminal run`` needs; build it with :func:`load_config` or :func:`parse_config`."""

    ledger: LedgerConfig
    roster_path: Path
    camera: CameraConfig = field(default_factory=CameraConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    screen: ScreenConfig = field(default_factory=ScreenConfig)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    feedback: FeedbackConfig | None = None  # None: no GPIO (headless, development)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    source: Path | None = None  # the file it was read from


# -- reading values ---------------------------------------------------------------------------------
class _Table:
    """One TOML table; every read names ``section.key`` in its error, unknown keys are refused."""

    def __init__(self, data: object, section: str, known: frozenset[str] | set[str]) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{section}: expected a table")
        for key in data:
            if key not in known:
                raise ConfigError(f"{section}.{key}: unknown setting")
        self.data: dict[str, Any] = data
        self.section = section

    def key(self, name: str) -> str:
        return f"{self.section}.{name}"

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)

    def text(self, name: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str | None:
        value = self.data.get(name, default)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{self.key(name)}: expected a non-empty string")
        if choices and value not in choices:
            raise ConfigError(f"{self.key(name)}: {value!r} is not one of {', '.join(choices)}")
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise ConfigError(f"{self.key(name)}: expected a number in [{low:g}, {high:g}], got {value!r}")
        return float(value)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.data.get(name, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.key(name)}: expected true or false")
        return value

    def path(self, name: str, default: Path | None, base: Path) -> Path | None:
        value = self.data.get(name)
        if value is None:
            return default
        if not isinstance(value, str) or not value or "\x00" in value:
            raise ConfigError(f"{self.key(name)}: expected a path")
        path = Path(value).expanduser()
        return path if path.is_absolute() else base / path

    def pair(self, name: str, default: tuple[int, int], low: int = 16, high: int = 8192) -> tuple[int, int]:
        value = self.data.get(name, list(default))
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and low <= v <= high for v in value)
        ):
            raise ConfigError(f"{self.key(name)}: expected [width, height] in pixels ({low}..{high})")
        return (value[0], value[1])


def _time(value: object, where: str) -> dt.time:
    if isinstance(value, dt.time):  # a TOML local time: 07:00:00
        return value
    if isinstance(value, str):
        try:
            return dt.time.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(f'{where}: expected a time such as "07:00", got {value!r}')


# -- sections ----------------------------------------------------------------------------------------
def _ledger(data: object, state: Path) -> LedgerConfig:
    table = _Table(data, "ledger", {"path", "key", "origin"})
    path = table.path("path", state / "ledger.db", state)
    assert path is not None
    key = table.path("key", path.with_name("device.key"), state)
    assert key is not None
    origin = table.text("origin")
    if origin is not None and (len(origin.split("/")) < 3 or any(c.isspace() for c in origin)):
        raise ConfigError(f"ledger.origin: {origin!r} is not of the form <register-host>/kgate/<device-id>")
    return LedgerConfig(path, key, origin)


def _camera(data: object, base: Path) -> CameraConfig:
    known = {"backend", "device", "paths", "loop", "size", "preview_size", "fps", "region"}
    table = _Table(data, "camera", known | {"read_timeout_seconds"})
    backend = table.text("backend", CameraConfig.backend, tuple(CAMERA_BACKENDS))
    assert backend is not None
    device = table.get("device", 0)
    if isinstance(device, bool) or not isinstance(device, int | str) or device in ("", -1):
        raise ConfigError("camera.device: expected a camera number (0) or a device path (/dev/video0)")
    raw_paths = table.get("paths", [])
    if not isinstance(raw_paths, list) or not all(isinstance(p, str) and p for p in raw_paths):
        raise ConfigError("camera.paths: expected a list of image, folder or video paths")
    paths = tuple(p if p.is_absolute() else base / p for p in (Path(s).expanduser() for s in raw_paths))
    region = table.get("region", [0.0, 0.0, 1.0, 1.0])
    if (
        not isinstance(region, list)
        or len(region) != 4
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in region)
    ):
        raise ConfigError("camera.region: expected [left, top, right, bottom] as fractions of the frame")
    try:
        decode_region = Region(*(float(v) for v in region))
    except ValueError:
        raise ConfigError(
            "camera.region: expected 0 <= left < right <= 1 and 0 <= top < bottom <= 1"
        ) from None
    try:
        return CameraConfig(
            backend=backend,
            device=device,
            paths=paths,
            loop=table.boolean("loop", True),
            size=table.pair("size", CameraConfig.size),
            preview_size=table.pair("preview_size", CameraConfig.preview_size),
            fps=table.number("fps", CameraConfig.fps, 1.0, 240.0),
            region=decode_region,
            read_timeout_seconds=table.number(
                "read_timeout_seconds", CameraConfig.read_timeout_seconds, 0.1, 60.0
            ),
        )
    except CameraConfigError as exc:  # the backend's own requirement, named by key
        raise ConfigError(str(exc)) from None


def _gate(data: object) -> GateConfig:
    """``[gate]``: the decision settings go into one :class:`DecideConfig`, which validates them."""
    decide_keys = {"debounce_seconds", "hours", "timezone", "rejected_log_seconds"}
    other_keys = {"mode", "language", "quiet_seconds", "card_seconds", "pickup", "pickup_window_seconds"}
    table = _Table(data, "gate", decide_keys | other_keys)
    mode = table.text("mode", GateConfig.mode, MODES)
    hours = table.get("hours", [DecideConfig.opens, DecideConfig.closes])
    if not isinstance(hours, list) or len(hours) != 2:
        raise ConfigError('gate.hours: expected ["opens", "closes"], e.g. ["07:00", "19:30"]')

    def seconds(name: str) -> float:
        return table.number(name, getattr(DecideConfig, name), *SECONDS_RANGE[name])

    try:
        decide = DecideConfig(
            debounce_seconds=seconds("debounce_seconds"),
            opens=_time(hours[0], "gate.hours[0]"),
            closes=_time(hours[1], "gate.hours[1]"),
            timezone=table.text("timezone"),
            rejected_log_seconds=seconds("rejected_log_seconds"),
        )
    except ValueError as exc:  # its message names the key
        raise ConfigError(str(exc)) from None
    language = table.text("language", GateConfig.language)
    pickup = table.text("pickup", GateConfig.pickup, PICKUP_POLICIES)
    assert language is not None and mode is not None and pickup is not None
    if not is_lang(language):
        raise ConfigError(f"gate.language: {language!r} is not one of kk, ru, en")
    return GateConfig(
        mode=mode,
        decide=decide,
        language=language,
        quiet_seconds=table.number("quiet_seconds", GateConfig.quiet_seconds, 0.0, 3600.0),
        card_seconds=table.number("card_seconds", GateConfig.card_seconds, 0.5, 600.0),
        pickup=pickup,
        pickup_window_seconds=table.number(
            "pickup_window_seconds", GateConfig.pickup_window_seconds, 1.0, 3600.0
        ),
    )


def _display(data: object, state: Path) -> DisplayConfig:
    """``[display]``: the backend's options as its registry entry (hardware/display) declares them."""
    if not isinstance(data, dict):
        raise ConfigError("display: expected a table")
    name = data.get("backend", "null")
    try:
        backend = display_backend(name)
    except DisplayConfigError as exc:
        raise ConfigError(str(exc)) from None
    table = _Table(data, "display", set(backend.options) | {"backend"})
    options: dict[str, Any] = {}
    for key, option in backend.options.items():
        if option.kind == "path":
            default = None if option.default is None else state / option.default
            value: Any = table.path(key, default, state)
        elif key not in data:
            continue
        elif option.kind == "count":
            value = int(table.number(key, 1, 1, 1_000_000))
        else:
            value = table.text(key)
        if value is not None:
            options[key] = value
    return DisplayConfig(name, options)


def _service(data: object, state: Path) -> ServiceConfig:
    table = _Table(data, "service", {"retry_initial_seconds", "retry_max_seconds", "status_file"})
    initial = table.number("retry_initial_seconds", 0.5, 0.01, 60.0)
    most = table.number("retry_max_seconds", 10.0, 0.01, 3600.0)
    if most < initial:
        raise ConfigError("service.retry_max_seconds: must not be less than service.retry_initial_seconds")
    return ServiceConfig(initial, most, table.path("status_file", state / "terminal-status.json", state))


def _wrap(section: str, build: Any, data: object) -> Any:
    """Run another package's validator, keeping its message (already named by key) as a ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{section}: expected a table")
    try:
        return build(data)
    except KgateError as exc:
        raise ConfigError(str(exc)) from None
    except TypeError as exc:  # a wrong value type reaching a dataclass
        raise ConfigError(f"{section}: {exc}") from None


def parse_config(
    doc: Mapping[str, Any], *, base: Path | None = None, state: Path | None = None
) -> TerminalConfig:
    """Validate a parsed TOML document; ``base``: folder for relative replay paths."""
    sections = {"ledger", "roster", "camera", "gate", "screen", "display", "feedback", "service"}
    for key in doc:
        if key not in sections:
            raise ConfigError(f"{key}: unknown section (expected {', '.join(sorted(sections))})")
    state = state or state_dir()
    base = base or Path.cwd()
    roster = _Table(doc.get("roster", {}), "roster", {"path"})
    roster_path = roster.path("path", state / "roster.db", state)
    assert roster_path is not None
    gate = _gate(doc.get("gate", {}))
    screen_table = dict(doc.get("screen", {})) if isinstance(doc.get("screen", {}), dict) else None
    if screen_table is None:
        raise ConfigError("screen: expected a table")
    screen_table.setdefault("lang", gate.language)
    feedback = doc.get("feedback")
    return TerminalConfig(
        ledger=_ledger(doc.get("ledger", {}), state),
        roster_path=roster_path,
        camera=_camera(doc.get("camera", {}), base),
        gate=gate,
        screen=_wrap("screen", ScreenConfig.from_mapping, screen_table),
        display=_display(doc.get("display", {}), state),
        feedback=None if feedback is None else _wrap("feedback", FeedbackConfig.from_mapping, feedback),
        service=_service(doc.get("service", {}), state),
    )


def dropin_dir(file: Path) -> Path:
    """Where the local drop-ins of ``file`` live: ``terminal.toml.d/`` beside ``terminal.toml``."""
    return file.with_name(file.name + DROPIN_SUFFIX)


def merge_dropins(doc: Mapping[str, Any], dropin: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` with ``dropin`` merged over it: tables merge key by key (recursively), any other value
    (a string, number, list) replaces the one below. Neither argument is changed."""
    merged = dict(doc)
    for key, value in dropin.items():
        below = merged.get(key)
        if isinstance(value, dict) and isinstance(below, dict):
            merged[key] = merge_dropins(below, value)
        else:
            merged[key] = value
    return merged


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = loads_toml_limited(
            read_limited(file, MAX_CONFIG_BYTES, "config"), f"config {file}"
        )
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    return doc


def load_config(path: Path | str | None = None) -> TerminalConfig:
    """Read and validate the TOML file at ``path`` (default ``$CONFIGURATION_DIRECTORY/terminal.toml``),
    with its drop-ins (``terminal.toml.d/*.toml``, in name order) merged over it."""
    file = Path(path) if path is not None else default_config_path()
    doc = _read_toml(file)
    dropins = dropin_dir(file)
    if dropins.is_dir():
        for extra in sorted(dropins.glob("*.toml")):
            doc = merge_dropins(doc, _read_toml(extra))
    config = parse_config(doc, base=file.parent.resolve())
    return replace(config, source=file)
