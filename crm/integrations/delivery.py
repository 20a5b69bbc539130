"""What a gateway can make of a message it was handed: shared by the SMS and the e-mail ports."""

from __future__ import annotations


class DeliveryError(Exception):
    """The gateway did not take the message; ``reason`` is kept with the message (no personal data)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TemporaryFailure(DeliveryError):
    """Try again later: 5xx, a timeout, a refused connection, an answer that makes no sense."""


class PermanentFailure(DeliveryError):
    """Never try again: the gateway refused this message (4xx) and said why."""
