"""The one interface every channel implements, and the message it is handed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from register.notify.messages import Message


@dataclass(frozen=True)
class Outgoing:
    """One claimed outbox row: where to, the deterministic ``key``, and the rendered message."""

    id: int
    key: str
    channel: str
    address: str
    target: str | None
    guardian: str
    attempts: int
    message: Message


class Channel(Protocol):
    """Delivers one message or raises :class:`~register.notify.errors.ChannelError` (retryable or not).

    ``send`` returns the service's id for the delivered message (stored as ``remote_id``), or None.
    Every network call it makes has a timeout; ``key`` is its idempotency key where the service has one.
    """

    name: str

    def send(self, item: Outgoing) -> str | None: ...

    def close(self) -> None: ...
