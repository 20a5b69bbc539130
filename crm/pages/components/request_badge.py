"""Requests on every tab: «Обращения» in the header with the count of new ones, kept live.

A tab takes the count from every ``RequestsChanged`` (it carries the count, so no query per change) and
hands the notification to the pages that list requests (``listeners``: the «Обращения» page redraws).

The count is the whole team's, so at ten calls a second every tab heard a new one several times a second —
most of all the socket messages a cluster of operator tabs received. The badge is a glance, not a
stopwatch: it shows a change at once, and the changes after it at most every ``BADGE_GAP_S`` (the last
one heard).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from nicegui import ui

from crm.bootstrap import Services
from crm.domain.actor import Actor
from crm.domain.notifications import RequestsChanged
from crm.pages.off_loop import service

RequestListener = Callable[[RequestsChanged], Awaitable[None]]
BADGE_GAP_S = 2.0  # the header's count changes at most this often


class RequestBadge:
    """«Обращения» in the header, with the number of new requests (hidden at 0)."""

    def __init__(self) -> None:
        with ui.link(target='/requests').classes('text-white no-underline opacity-90 crm-chat-link'):
            ui.label('Обращения')
            self.count = ui.badge('', color='orange').props('rounded').mark('requests-new')
        self.count.set_visibility(False)
        self.shown: int | None = None

    def show(self, count: int) -> None:
        self.shown = count
        self.count.set_text(str(count))
        self.count.set_visibility(count > 0)


class RequestHost(Protocol):
    services: Services
    actor: Actor


class RequestLive:
    """A tab's requests side: the header's badge and the pages listening for changes."""

    def __init__(self, host: RequestHost) -> None:
        self.host = host
        self.badge: RequestBadge | None = None  # set by the frame that drew the header
        self.listeners: list[RequestListener] = []
        self._changes = 0  # notifications heard: a count read across one of them may be older than it
        self.gap_s = BADGE_GAP_S
        self._shown_at = float('-inf')  # loop time the badge last changed
        self._latest: int | None = None  # the count heard last, shown at the end of the gap
        self._due: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        if self.badge is None:
            return
        for _ in range(3):  # a count that changed while it was read is read again
            seen = self._changes
            count = await service(self.host.services.requests.new_count)
            if self._changes == seen:
                break
        self.badge.show(count)

    async def on_change(self, change: RequestsChanged) -> None:
        """On the event loop."""
        self._changes += 1
        if self.badge is not None and change.new_count is not None:
            self._show_soon(change.new_count)
        for listener in list(self.listeners):
            await listener(change)

    def _show_soon(self, count: int) -> None:
        """Now if the badge has not changed for the gap, else the latest count at the gap's end."""
        self._latest = count
        if self._due is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self._shown_at + self.gap_s - loop.time()
        if wait <= 0:
            self._show_latest()
        else:
            self._due = loop.call_later(wait, self._show_latest)

    def _show_latest(self) -> None:
        self._due = None
        if self.badge is None or self._latest is None or self.badge.count.is_deleted:
            return
        self._shown_at = asyncio.get_running_loop().time()
        self.badge.show(self._latest)
