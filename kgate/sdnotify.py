"""A tiny sd_notify(3): ``READY=1``, ``WATCHDOG=1`` and ``STATUS=`` datagrams to ``$NOTIFY_SOCKET``.

Without ``NOTIFY_SOCKET`` (not started by systemd, tests) every call is a no-op, so the daemon runs
the same code path everywhere. Shared by both daemons (``kgate terminal run``, ``kgate sync run``), so
it lives in the base package that every layer may import.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    """Sends notifications to systemd; ``socket_path`` defaults to ``$NOTIFY_SOCKET``."""

    def __init__(self, socket_path: str | None = None) -> None:
        path = socket_path if socket_path is not None else os.environ.get("NOTIFY_SOCKET", "")
        if path.startswith("@"):  # abstract namespace
            path = "\0" + path[1:]
        self._path = path or None

    @property
    def enabled(self) -> bool:
        return self._path is not None

    def notify(self, message: str) -> bool:
        """Send one datagram; False (never an exception) when systemd is absent or not listening."""
        if self._path is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self._path)
                sock.sendall(message.encode())
        except OSError:
            return False
        return True

    def ready(self) -> bool:
        return self.notify("READY=1")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.notify("STATUS=" + text.replace("\n", " ")[:200])
