"""The one interface every channel implements, and the message it is handed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from register.notify.messages import Message


@dataclass(frozen=True)
class Outgoing:
    """One claimed outbox row: where to, the deterministic ``key``, and the rendered message.

    ``now_ms``: when it is sent (the dispatcher's clock; an email's ``Date``); ``unsubscribe``: the
    RFC 8058 one-click URL of an email (register/notify/unsubscribe.py), None for other channels.
    """

    id: int
    key: str
    channel: str
    address: str
    target: str | None
    guardian: str
    attempts: int
    message: Message
    now_ms: int = 0
    unsubscribe: str | None = None
    also: tuple[int, ...] = ()  # a digest: the other outbox rows this one message delivers


class Channel(Protocol):
    """Delivers one message or raises :class:`~register.notify.errors.ChannelError` (retryable or not).

    ``send`` returns the service's id for the delivered message (stored as ``remote_id``), or None.
    Every network call it makes has a timeout; ``key`` is its idempotency key where the service has one.
    """

    name: str

    def send(self, item: Outgoing) -> str | None: ...

    def close(self) -> None: ...
