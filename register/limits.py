"""Request limits: body sizes, batch size, and a per-device token bucket."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from register.errors import RateLimited


@dataclass(frozen=True)
class Limits:
    """Limits applied to every request; the defaults suit a 4096-entry batch with room to spare."""

    max_body: int = 8 << 20  # bytes as received (compressed)
    max_decoded: int = 32 << 20  # bytes after gzip (a decompression bomb stops here)
    max_batch: int = 4096  # entries per push
    rate: float = 10.0  # requests per second per device, sustained
    burst: int = 40  # requests a device may make at once

    def __post_init__(self) -> None:
        for name in ("max_body", "max_decoded", "max_batch", "burst"):
            if getattr(self, name) <= 0:
                raise ValueError(f"limit {name} must be positive")
        if not self.rate > 0:
            raise ValueError("limit rate must be positive")


class TokenBuckets:
    """One token bucket per key (device); ``take`` raises RateLimited with a Retry-After in seconds."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - at) * self._rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                wait = max(1, math.ceil((1.0 - tokens) / self._rate))
                raise RateLimited(f"more than {self._rate:g} requests/s from this device", retry_after=wait)
            self._buckets[key] = (tokens - 1.0, now)
