"""The e-mail port and its embedded adapter, which keeps what would be sent.

``send`` hands one message to the mail server or raises ``TemporaryFailure`` / ``PermanentFailure``.
SMTP has no idempotency of its own: ``EmailMessage.id`` becomes the Message-ID, by which mail clients
drop a repeat; the outbox's lease makes a repeat happen only when a dispatcher dies mid-send.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from crm.integrations.delivery import DeliveryError, PermanentFailure, TemporaryFailure

__all__ = [
    'DeliveryError',
    'EmailMessage',
    'Mailer',
    'PermanentFailure',
    'RecordingMailer',
    'TemporaryFailure',
]


@dataclass(frozen=True)
class EmailMessage:
    id: str  # the idempotency key
    to: str
    subject: str
    text: str
    html: str
    sender: str


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> str:
        """The Message-ID the message went with."""

    def close(self) -> None: ...


class RecordingMailer:
    """The embedded default and the tests' mailer: keeps every message once per id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent: list[EmailMessage] = []
        self._ids: set[str] = set()

    def send(self, message: EmailMessage) -> str:
        with self._lock:
            if message.id not in self._ids:
                self._ids.add(message.id)
                self.sent.append(message)
        return f'<{message.id}@crm.local>'

    def close(self) -> None:
        pass
