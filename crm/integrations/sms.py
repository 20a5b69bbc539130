"""The SMS gateway port and its embedded adapter, which keeps what would be sent.

``send`` hands one message to the gateway and returns the gateway's id for it, or raises
``TemporaryFailure`` / ``PermanentFailure`` (``crm.integrations.delivery``). ``SmsMessage.id`` is the
outbox row's idempotency key: a gateway given the same id twice sends one SMS (the real one is asked to;
the embedded one does so), so a dispatcher that dies between the send and its commit makes no second SMS.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from crm.integrations.delivery import DeliveryError, PermanentFailure, TemporaryFailure

__all__ = [
    'DeliveryError',
    'PermanentFailure',
    'RecordingSms',
    'SmsGateway',
    'SmsMessage',
    'TemporaryFailure',
]


@dataclass(frozen=True)
class SmsMessage:
    id: str  # the idempotency key
    to: str  # 7XXXXXXXXXX
    text: str
    sender: str


class SmsGateway(Protocol):
    def send(self, message: SmsMessage) -> str:
        """The gateway's id of the accepted message."""

    def close(self) -> None: ...


class RecordingSms:
    """The embedded default and the tests' gateway: accepts everything once per id and keeps it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent: list[SmsMessage] = []
        self._ids: dict[str, str] = {}

    def send(self, message: SmsMessage) -> str:
        with self._lock:
            if message.id not in self._ids:
                self._ids[message.id] = f'local-{len(self._ids) + 1}'
                self.sent.append(message)
            return self._ids[message.id]

    def close(self) -> None:
        pass
