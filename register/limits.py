"""Request limits: body sizes and deadlines, batch size, and per-device budgets (token buckets)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from register.errors import RateLimited


@dataclass(frozen=True)
class Limits:
    """Limits applied to every request; the defaults suit a 4096-entry batch with room to spare.

    Budgets are per device (per signing key): requests, entries and body bytes are token buckets that
    refill at ``*_rate`` per second up to ``*_burst``; ``nonces`` caps one key's share of the replay
    cache (a nonce is remembered for 600 s, so 20,000 allows 33 requests/s sustained).
    """

    max_body: int = 8 << 20  # bytes as received (compressed)
    max_decoded: int = 32 << 20  # bytes after gzip (a decompression bomb stops here)
    max_batch: int = 4096  # entries per push
    rate: float = 10.0  # requests per second per device, sustained
    burst: int = 40  # requests a device may make at once
    entries_rate: float = 100.0  # entries per second per device, sustained
    entries_burst: int = 200_000  # entries a device may push at once (a long outage's backlog)
    bytes_rate: float = float(1 << 20)  # body bytes per second per device, sustained
    bytes_burst: int = 256 << 20  # body bytes a device may send at once
    nonces: int = 20_000  # live nonces per device key in the replay cache
    body_timeout: float = 10.0  # seconds to receive a whole body, on every route (register/guard.py)
    max_form: int = 4096  # bytes of a console form body (/console/..., the parent report page included)

    def body_cap(self, path: str) -> int:
        """The most body bytes a request to ``path`` may send: a console form's, else ``max_body``."""
        return self.max_form if path == "/console" or path.startswith("/console/") else self.max_body

    def __post_init__(self) -> None:
        for name in ("max_body", "max_form", "max_decoded", "max_batch", "burst", "entries_burst"):
            if getattr(self, name) <= 0:
                raise ValueError(f"limit {name} must be positive")
        for name in ("bytes_burst", "nonces", "rate", "entries_rate", "bytes_rate", "body_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"limit {name} must be positive")
        if self.bytes_burst < self.max_body or self.entries_burst < self.max_batch:
            raise ValueError("bytes_burst must be >= max_body and entries_burst >= max_batch")


class TokenBuckets:
    """One token bucket per key (device); ``take`` raises RateLimited with a Retry-After in seconds."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float], *, what: str = "requests"
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._what = what
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> None:
        """Spend ``cost`` tokens of ``key``'s bucket, or raise RateLimited (spending nothing)."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (self._burst, now))
            tokens = min(self._burst, tokens + max(0.0, now - at) * self._rate)
            if tokens < cost:
                self._buckets[key] = (tokens, now)
                wait = max(1, math.ceil((min(cost, self._burst) - tokens) / self._rate))
                raise RateLimited(
                    f"more than {self._rate:g} {self._what}/s from this device", retry_after=wait
                )
            self._buckets[key] = (tokens - cost, now)


class DeviceBudgets:
    """The per-device request, entry and byte budgets of :class:`Limits`."""

    def __init__(self, limits: Limits, clock: Callable[[], float]) -> None:
        self.requests = TokenBuckets(limits.rate, limits.burst, clock)
        self.entries = TokenBuckets(limits.entries_rate, limits.entries_burst, clock, what="entries")
        self.bytes = TokenBuckets(limits.bytes_rate, limits.bytes_burst, clock, what="body bytes")
