"""The device's heartbeat: a few numbers that tell the register a gate is alive and healthy.

It rides on every push and, when nothing is pending, goes alone to ``POST /v1/heartbeat``. The
terminal may write a small JSON status file (``{"roster_version": int, "camera_ok": bool}``); absent or
unreadable fields are sent as ``null`` rather than guessed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from kgate import __version__
from kgate.bounded import loads_json_limited, read_limited
from kgate.errors import InputError
from ledger.clock import SystemClock

STATUS_FILE: Final = "terminal-status.json"
MAX_STATUS_FILE: Final = 65536


def free_disk_bytes(path: Path) -> int | None:
    """Bytes available to unprivileged users on the filesystem holding ``path``."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def uptime_s(proc_uptime: Path = Path("/proc/uptime")) -> int | None:
    """Seconds since boot, from /proc/uptime (None elsewhere)."""
    try:
        return int(float(proc_uptime.read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return None


def read_terminal_status(path: Path | None) -> dict[str, Any]:
    """``roster_version`` and ``camera_ok`` from the terminal's status file, each None if unknown."""
    out: dict[str, Any] = {"roster_version": None, "camera_ok": None}
    if path is None:
        return out
    try:  # bounded: a FIFO or /dev/zero in the config must not hang or grow the agent
        data = loads_json_limited(read_limited(path, MAX_STATUS_FILE, "status file"), "status file")
    except InputError:
        return out
    if isinstance(data, dict):
        rv = data.get("roster_version")
        if isinstance(rv, int) and not isinstance(rv, bool) and rv >= 0:
            out["roster_version"] = rv
        if isinstance(data.get("camera_ok"), bool):
            out["camera_ok"] = data["camera_ok"]
    return out


class HeartbeatSource:
    """Builds heartbeat dicts (protocol draft field names) for one ledger."""

    def __init__(
        self,
        ledger_path: Path,
        status_file: Path | None,
        *,
        clock_synced: Callable[[], bool] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._ledger_dir = Path(ledger_path).resolve().parent
        self._status_file = status_file
        self._system = SystemClock()
        self._clock_synced = clock_synced or self._system_synced
        self._wall = wall

    def _system_synced(self) -> bool:
        return self._system.read().synced

    def __call__(self, pending: int) -> dict[str, Any]:
        status = read_terminal_status(self._status_file)
        return {
            "time_ms": int(self._wall() * 1000),
            "free_disk_bytes": free_disk_bytes(self._ledger_dir),
            "clock_synced": self._clock_synced(),
            "roster_version": status["roster_version"],
            "camera_ok": status["camera_ok"],
            "uptime_s": uptime_s(),
            "software_version": __version__,
            "pending": pending,
        }
