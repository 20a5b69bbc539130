"""Messages from the card: SMS, e-mail and the personal-account password, queued through the outbox."""

from __future__ import annotations
