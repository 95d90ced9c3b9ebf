"""Time as the ledger records it: UTC wall time, whether it is synced, and monotonic time per boot."""

from __future__ import annotations

import ctypes
import ctypes.util
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised


@dataclass(frozen=True)
class Reading:
    """One reading of the clocks, taken together for one entry."""

    time_ms: int
    synced: bool
    mono_ns: int


class Clock(Protocol):
    """What the ledger needs to stamp an entry; :class:`SystemClock` or :class:`FakeClock`."""

    @property
    def boot_id(self) -> bytes: ...

    def read(self) -> Reading: ...


def _kernel_synced() -> bool:
    """True when the kernel says NTP/chrony/an RTC keeps the clock synchronised (adjtimex)."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex with modes = 0: read only
        state = int(libc.adjtimex(buf))
    except (OSError, AttributeError):
        return False
    return 0 <= state != _TIME_ERROR


class SystemClock:
    """The machine's clocks; boot id from the kernel (random per boot), sync state from adjtimex."""

    def __init__(self) -> None:
        try:
            self._boot_id = uuid.UUID(_BOOT_ID.read_text().strip()).bytes
        except (OSError, ValueError):
            self._boot_id = uuid.uuid4().bytes  # not Linux: one id per process start
        self._synced_checked = 0.0
        self._synced = False

    @property
    def boot_id(self) -> bytes:
        return self._boot_id

    def read(self) -> Reading:
        mono = time.monotonic_ns()
        if mono - self._synced_checked > 10e9:  # a syscall per entry is cheap, but 10 s is enough
            self._synced = _kernel_synced()
            self._synced_checked = mono
        return Reading(time.time_ns() // 1_000_000, self._synced, mono)


class FakeClock:
    """A settable clock for tests and the demo; ``advance`` moves wall and monotonic time together."""

    def __init__(self, time_ms: int, *, synced: bool = True, boot_id: bytes | None = None) -> None:
        self.time_ms = time_ms
        self.synced = synced
        self.mono_ns = 1_000_000_000
        self._boot_id = boot_id or uuid.uuid4().bytes

    @property
    def boot_id(self) -> bytes:
        return self._boot_id

    def advance(self, seconds: float) -> None:
        self.time_ms += round(seconds * 1000)
        self.mono_ns += round(seconds * 1e9)

    def read(self) -> Reading:
        return Reading(self.time_ms, self.synced, self.mono_ns)
