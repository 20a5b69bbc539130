"""The live path's last step: notifications from the bus reach this process's open tabs.

``on_ui`` may be called from any thread (the bus consumer, a worker) with a message in the wire form of
``crm.domain.notifications``; the registry and the tabs are touched only on the event loop, where NiceGUI
elements may be changed. Routing is by type: a screen pop and a call's state go to the tabs of the
operator's extension, a history change to every tab (each knows whether it shows that borrower).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nicegui import Client, background_tasks

from crm.domain.notifications import (
    BadNotification,
    CallStateChanged,
    HistoryChanged,
    Notification,
    ScreenPop,
    from_wire,
)

log = logging.getLogger(__name__)

Listener = Callable[[Notification], Awaitable[None]]


@dataclass(eq=False)
class Tab:
    client: Client
    extension: str | None
    listener: Listener


class LiveHub:
    """Operator extension -> open tabs, per process."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tabs: dict[str, Tab] = {}  # client id -> tab
        self._by_extension: dict[str, dict[str, Tab]] = {}  # extension -> client id -> tab
        self._last_dispatch = time.monotonic()

    def attach_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def on_ui(self, body: dict[str, Any]) -> None:
        """Thread-safe entry point for the bus."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._dispatch, body)

    def register(self, client: Client, extension: str | None, listener: Listener) -> None:
        tab = Tab(client, extension, listener)
        self._tabs[client.id] = tab
        if extension:
            self._by_extension.setdefault(extension, {})[client.id] = tab
        client.on_delete(lambda: self._forget(client.id, extension))

    def _forget(self, client_id: str, extension: str | None) -> None:
        self._tabs.pop(client_id, None)
        if extension:
            tabs = self._by_extension.get(extension, {})
            tabs.pop(client_id, None)
            if not tabs:
                self._by_extension.pop(extension, None)

    def tabs_of(self, extension: str) -> list[Tab]:
        return list(self._by_extension.get(extension, {}).values())

    def quiet_for(self) -> float:
        """Seconds since the last notification reached this process's tabs."""
        return time.monotonic() - self._last_dispatch

    def _dispatch(self, body: dict[str, Any]) -> None:
        self._last_dispatch = time.monotonic()
        try:
            notifications = from_wire(body)
        except BadNotification as error:
            log.warning('UI notification ignored: %s', error)
            return
        for notification in notifications:
            for tab in self._targets(notification):
                background_tasks.create(self._deliver(tab, notification), name=f'live-{notification.kind}')

    def _targets(self, notification: Notification) -> list[Tab]:
        match notification:
            case ScreenPop(extension=extension) | CallStateChanged(extension=extension):
                return self.tabs_of(extension) if extension else []
            case HistoryChanged():
                return list(self._tabs.values())
        return []

    @staticmethod
    async def _deliver(tab: Tab, notification: Notification) -> None:
        if tab.client.is_deleted:  # closed between dispatch and delivery
            return
        try:
            with tab.client:  # a background task has no slot of its own: use the tab's
                await tab.listener(notification)
        except Exception:
            log.exception('live update %s failed for a tab', notification.kind)
