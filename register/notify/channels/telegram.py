"""Telegram through the Bot API's ``sendMessage`` over HTTPS; the bot token comes from a 0600 file.

The Bot API has no idempotency key: a resend after a crash between Telegram's answer and the outbox
update sends a second message (at-least-once). The answer's ``message_id`` is stored as ``remote_id``.
"""

from __future__ import annotations

from pathlib import Path

import requests

from kgate.errors import UsageError
from kgate.urls import check_url
from ledger.errors import KeyFileError
from ledger.keys import read_secret
from register.notify.channels.base import Outgoing
from register.notify.channels.http import check_status, post
from register.notify.errors import NotifyConfigError, PermanentFailure

API = "https://api.telegram.org"


def read_token(path: Path) -> str:
    try:
        token = read_secret(path, "Telegram bot token file").strip()
    except KeyFileError as exc:
        raise NotifyConfigError(str(exc)) from None
    if not token or any(c.isspace() or c == "/" for c in token):
        raise NotifyConfigError(f"Telegram bot token file {path} must hold one token")
    return token


class TelegramChannel:
    """Sends each message to a chat id as the bot whose ``token`` is given."""

    name = "telegram"

    def __init__(self, token: str, *, base_url: str = API, ca: Path | None = None) -> None:
        try:
            self._url = f"{check_url(base_url, '--telegram-api')}/bot{token}/sendMessage"
        except UsageError as exc:
            raise NotifyConfigError(str(exc)) from None
        self._ca = ca
        self._session = requests.Session()

    def send(self, item: Outgoing) -> str | None:
        body = {
            "chat_id": int(item.address),
            "text": item.message.text,
            "link_preview_options": {"is_disabled": True},
        }
        resp = post(self._session, self._url, "Telegram sendMessage", ca=self._ca, json=body)
        check_status(resp, "Telegram sendMessage")
        try:
            answer = resp.json()
            if answer.get("ok") is not True:
                raise PermanentFailure(f"Telegram: {str(answer.get('description'))[:200]}")
            return str(int(answer["result"]["message_id"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise PermanentFailure("Telegram answered without a message_id") from None

    def close(self) -> None:
        self._session.close()
