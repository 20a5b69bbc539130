"""Tells the screens what a committed transaction changed: typed notifications out on the bus."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from crm.domain.notifications import Notification, to_wire
from crm.integrations.bus import EventBus

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    def publish(self, notifications: Sequence[Notification]) -> None:
        """One UI message for everything a transaction changed; call it after the commit."""
        if not notifications:
            return
        try:
            self._bus.publish_ui(to_wire(notifications))
        except Exception:  # the effect is committed; a lost screen update must not undo it
            log.warning('%d UI notifications not delivered', len(notifications), exc_info=True)
