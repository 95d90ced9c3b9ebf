"""Email over SMTP (smtplib): STARTTLS required unless the server is on loopback; one reused session.

The Message-ID is ``<key@domain>`` with the outbox row's deterministic key, so a message sent twice
(a crash between the server's acceptance and the outbox update) is recognisable as the same message.
"""

from __future__ import annotations

import base64
import email.header
import email.utils
import smtplib
import ssl
from pathlib import Path

from kgate.urls import is_loopback
from ledger.errors import KeyFileError
from ledger.keys import read_secret
from register.notify.channels.base import Outgoing
from register.notify.errors import NotifyConfigError, PermanentFailure, TemporaryFailure


def parse_hostport(text: str, what: str = "--smtp") -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise NotifyConfigError(f"{what} {text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def read_credentials(path: Path) -> tuple[str, str]:
    """``user:password`` from a 0600 file owned by the service user (:func:`ledger.keys.read_secret`)."""
    try:
        text = read_secret(path, "SMTP credentials file").strip()
    except KeyFileError as exc:
        raise NotifyConfigError(str(exc)) from None
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise NotifyConfigError(f"SMTP credentials file {path} must hold one line USER:PASSWORD")
    return user, password


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


class EmailChannel:
    """Sends each message as a plain-text email from ``sender`` (shown as ``sender_name`` when given)
    through ``host:port``."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        credentials: tuple[str, str] | None = None,
        ca: Path | None = None,
        timeout: float = 15.0,
        domain: str = "kgate.invalid",
        sender_name: str | None = None,
    ) -> None:
        self.host, self.port, self.sender, self.domain = host, port, sender, domain
        if sender_name is not None and (not sender_name.strip() or not sender_name.isprintable()):
            raise NotifyConfigError("--smtp-from-name must be printable text")
        self._from = email.utils.formataddr((sender_name, sender)) if sender_name else sender
        self._credentials = credentials
        self._timeout = timeout
        self._tls = ssl.create_default_context(cafile=None if ca is None else str(ca))
        self._require_tls = not is_loopback(host)
        self._session: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.host, self.port, timeout=self._timeout)
        try:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls(context=self._tls)
                smtp.ehlo()
            elif self._require_tls:
                raise TemporaryFailure(
                    f"SMTP server {self.host} does not offer STARTTLS; refusing plain text"
                )
            if self._credentials is not None:
                smtp.login(*self._credentials)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def build(self, item: Outgoing) -> tuple[str, bytes]:
        """The Message-ID and the message as sent: plain text, UTF-8 in base64, RFC 2047 subject.

        Written out directly (not with :class:`email.message.EmailMessage`, whose header parsing took
        most of a send's time). Addresses were validated at import (no CR/LF can reach a header).
        ``Date`` is the time of sending (``item.now_ms``); an item with an unsubscribe URL gets the
        RFC 8058 headers ``List-Unsubscribe`` and ``List-Unsubscribe-Post``.
        """
        message_id = f"<{item.key}@{self.domain}>"
        subject = email.header.Header(item.message.subject, "utf-8").encode(linesep="\r\n")
        head = (
            f"From: {self._from}\r\nTo: {item.address}\r\nSubject: {subject}\r\n"
            f"Date: {email.utils.formatdate(item.now_ms / 1000 if item.now_ms else None)}\r\n"
            f"Message-ID: {message_id}\r\n"
            + (
                f"List-Unsubscribe: <{item.unsubscribe}>\r\n"
                "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
                if item.unsubscribe
                else ""
            )
            + "Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
            'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        )
        body = base64.encodebytes(item.message.text.encode("utf-8")).replace(b"\n", b"\r\n")
        return message_id, head.encode("ascii") + body

    def send(self, item: Outgoing) -> str | None:
        message_id, data = self.build(item)
        for fresh in (False, True):
            try:
                if self._session is None or fresh:
                    self.close()
                    self._session = self._connect()
                self._session.sendmail(self.sender, [item.address], data)
                return message_id
            except smtplib.SMTPServerDisconnected:
                self.close()
                if fresh:
                    raise TemporaryFailure("SMTP server closed the connection") from None
            except smtplib.SMTPRecipientsRefused as exc:
                code = min(c for c, _ in exc.recipients.values())
                raise (PermanentFailure if code >= 500 else TemporaryFailure)(
                    f"SMTP refused {item.address}: {code}"
                ) from None
            except smtplib.SMTPResponseException as exc:
                self.close()
                raise (PermanentFailure if exc.smtp_code >= 500 else TemporaryFailure)(
                    f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)[:200]}"
                ) from None
            except (OSError, smtplib.SMTPException) as exc:  # refused, timeout, TLS failure
                self.close()
                raise TemporaryFailure(f"SMTP {self.host}:{self.port}: {type(exc).__name__}: {exc}") from None
        raise TemporaryFailure("SMTP: unreachable")  # pragma: no cover - the loop returns or raises

    def close(self) -> None:
        if self._session is not None:
            try:
                self._session.quit()
            except (OSError, smtplib.SMTPException):
                self._session.close()
            self._session = None
