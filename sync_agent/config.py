"""The agent's configuration: a frozen dataclass from TOML and/or command-line flags, validated once.

Example ``/etc/kgate/sync.toml``::

    ledger = "/var/lib/kgate/ledger.db"
    state = "/var/lib/kgate/sync"
    register = "https://register.example.kz"
    key = "/var/lib/kgate/device.key"
    register_vkey = "register.example.kz+1a2b3c4d+BA..."
    ca = "/etc/kgate/register-ca.pem"
    batch_size = 1024

Relative defaults come from ``$STATE_DIRECTORY`` (systemd ``StateDirectory=``). Messages name the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from kgate.bounded import KiB, loads_toml_limited, read_limited
from kgate.errors import UsageError
from kgate.urls import check_url
from ledger.errors import BadKeyError
from ledger.note import CosignatureVerifier
from ledger.store import RETAIN_EVERY

#: sync.toml is a dozen lines; anything near this size is not a config.
MAX_CONFIG_BYTES = 64 * KiB


@dataclass(frozen=True)
class SyncConfig:
    """Everything ``kgate sync once|run`` needs; build it with :func:`load_config`."""

    ledger: Path
    state: Path
    register: str
    key: Path
    register_vkey: str
    ca: Path | None = None
    terminal_status: Path | None = None
    batch_size: int = 1024
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    poll_interval: float = 30.0  # the longest wait between rounds, when the gate is idle
    push_interval: float = 2.0  # the wait after a round that delivered entries, at most poll_interval
    heartbeat_interval: float = 300.0
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    roster_db: Path | None = None  # the terminal's roster database; with kindergarten: TUF roster updates
    kindergarten: str | None = None
    roster_interval: float = 600.0
    roster_tuf: Path | None = None  # the trusted roster metadata (root.json); default STATE/roster-tuf

    def __post_init__(self) -> None:
        check_url(self.register, "register URL")
        try:
            CosignatureVerifier.from_vkey(self.register_vkey)
        except BadKeyError as exc:
            raise UsageError(f"register_vkey: not a cosignature/v1 verifier key ({exc})") from None
        if not RETAIN_EVERY <= self.batch_size <= 65536:
            raise UsageError(f"batch_size: must be between {RETAIN_EVERY} and 65536, got {self.batch_size}")
        for name in ("connect_timeout", "read_timeout", "poll_interval", "push_interval",
                     "heartbeat_interval", "backoff_base", "backoff_cap", "roster_interval"):  # fmt: skip
            if not getattr(self, name) > 0:
                raise UsageError(f"{name}: must be a positive number of seconds")
        if self.backoff_cap < self.backoff_base:
            raise UsageError("backoff_cap: must not be smaller than backoff_base")

    def cosigner(self) -> CosignatureVerifier:
        return CosignatureVerifier.from_vkey(self.register_vkey)


_PATHS = {"ledger", "state", "key", "ca", "terminal_status", "roster_db", "roster_tuf"}
_NUMBERS = {"connect_timeout", "read_timeout", "poll_interval", "push_interval", "heartbeat_interval",
            "backoff_base", "backoff_cap", "roster_interval"}  # fmt: skip


def _convert(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _PATHS:
        if not isinstance(value, str | Path) or not str(value):
            raise UsageError(f"{name}: must be a path string")
        return Path(value)
    if name == "batch_size":
        if not isinstance(value, int) or isinstance(value, bool):
            raise UsageError(f"{name}: must be an integer")
        return value
    if name in _NUMBERS:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise UsageError(f"{name}: must be a number")
        return float(value)
    if not isinstance(value, str):
        raise UsageError(f"{name}: must be a string")
    return value


def load_config(path: Path | None, overrides: Mapping[str, Any]) -> SyncConfig:
    """Read ``path`` (TOML, optional), apply non-None ``overrides`` (CLI flags), validate."""
    data: dict[str, Any] = {}
    if path is not None:
        data = loads_toml_limited(read_limited(path, MAX_CONFIG_BYTES, "config"), f"config {path}")
    known = {f.name for f in fields(SyncConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(f"{unknown[0]}: unknown configuration key in {path}")
    data.update({k: v for k, v in overrides.items() if v is not None and k in known})
    state_dir = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if "state" not in data and state_dir:
        data["state"] = state_dir
    for required in ("ledger", "state", "register", "key", "register_vkey"):
        if data.get(required) is None:
            raise UsageError(f"{required}: required (flag --{required.replace('_', '-')} or config key)")
    return SyncConfig(**{k: _convert(k, v) for k, v in data.items()})
