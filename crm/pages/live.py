"""The live path's last step: notifications from the bus reach this process's open tabs.

``on_ui`` may be called from any thread (the bus consumer, a worker) with a message in the wire form of
``crm.domain.notifications``; the registry and the tabs are touched only on the event loop, where NiceGUI
elements may be changed. Routing is by type: a screen pop and a call's state go to the tabs of the
operator's extension, a history change, a chat's or the requests' to every tab (each knows whether it
shows that borrower).

Every notification is one callback on the loop, whatever the number of tabs, and a tab gets a task only
for what it shows: an operator's state goes to that operator's tabs (dashboards hear it once per process
through ``observe``), a history change to the tabs whose ``wants`` says they show that borrower. Sent to
every tab, the forty state changes a second of a busy floor made four thousand tasks a second in a
process of a hundred tabs, nearly all of them to find nothing to do.

A tab may also give a ``prepare`` function, run on the hub's own reader threads the moment the
notification arrives — for the process that recorded the call, right after its commit — while the loop
already draws the caller's name: the tab gets the notification at once with a future of what ``prepare``
makes of it. The name is not held up by the card, the card does not queue behind other work in NiceGUI's
thread pool, and the bus thread is never held up by it (nor the other processes that wait for its publish).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from nicegui import Client, background_tasks

from crm.domain.notifications import (
    BadNotification,
    CallStateChanged,
    ChatChanged,
    HistoryChanged,
    MailingProgress,
    Notification,
    OperatorStateChanged,
    RequestsChanged,
    ScreenPop,
    from_wire,
)

log = logging.getLogger(__name__)

Listener = Callable[[Notification, 'Future[Any] | None'], Awaitable[None]]  # (it, what prepare will make)
Preparer = Callable[[Notification], Any]  # blocking; runs on the hub's reader threads
Wants = Callable[[Notification], bool]  # on the loop: whether a tab has anything to do with a notification
READERS = 2  # reader threads: a card read is mostly waiting for the database


@dataclass(eq=False)
class Tab:
    client: Client
    extension: str | None
    listener: Listener
    prepare: Preparer | None = None
    user_id: int | None = None
    wants: Wants | None = None


class LiveHub:
    """Operator extension -> open tabs, per process."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tabs: dict[str, Tab] = {}  # client id -> tab
        self._by_extension: dict[str, dict[str, Tab]] = {}  # extension -> client id -> tab
        self._by_user: dict[int, dict[str, Tab]] = {}  # user id -> client id -> tab
        self._mailing_pages: dict[str, Tab] = {}  # client id -> a «Рассылки» page's listener
        self._last_dispatch = time.monotonic()
        self._readers = ThreadPoolExecutor(READERS, thread_name_prefix='crm-live-read')
        self._observers: list[Callable[[Notification], None]] = []  # per process: the dashboards' hub

    def attach_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def close(self) -> None:
        """At shutdown, before the database goes: no more notifications, and no read left running."""
        self._loop = None
        self._readers.shutdown(wait=True, cancel_futures=True)

    def on_ui(self, body: dict[str, Any]) -> None:
        """Thread-safe entry point for the bus: prepare here, then hand each tab its part on the loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            notifications = from_wire(body)
        except BadNotification as error:
            log.warning('UI notification ignored: %s', error)
            return
        for notification in notifications:
            deliveries = []
            for tab in self._targets(notification):
                prepared = None
                if tab.prepare is not None and not tab.client.is_deleted:
                    prepared = self._readers.submit(self._prepared, tab.prepare, notification)
                deliveries.append((tab, prepared))
            loop.call_soon_threadsafe(self._dispatch, notification, deliveries)

    def register(
        self,
        client: Client,
        extension: str | None,
        listener: Listener,
        prepare: Preparer | None = None,
        *,
        user_id: int | None = None,
        wants: Wants | None = None,
    ) -> None:
        """A tab of ``user_id`` (its state chip) and ``extension`` (its calls); ``wants`` filters the rest."""
        tab = Tab(client, extension, listener, prepare, user_id, wants)
        self._tabs[client.id] = tab
        if extension:
            self._by_extension.setdefault(extension, {})[client.id] = tab
        if user_id is not None:
            self._by_user.setdefault(user_id, {})[client.id] = tab
        client.on_delete(lambda: self._forget(tab))

    def _forget(self, tab: Tab) -> None:
        self._tabs.pop(tab.client.id, None)
        if tab.extension:
            _unindex(self._by_extension, tab.extension, tab.client.id)
        if tab.user_id is not None:
            _unindex(self._by_user, tab.user_id, tab.client.id)

    def observe(self, observer: Callable[[Notification], None]) -> None:
        """A per-process listener (``DashboardHub``) that hears every notification once, on the loop."""
        self._observers.append(observer)

    def watch_mailings(self, client: Client, listener: Listener) -> None:
        """A «Рассылки» page: it gets every ``MailingProgress`` (beside its tab's own registration)."""
        self._mailing_pages[client.id] = Tab(client, None, listener)
        client.on_delete(lambda: self._mailing_pages.pop(client.id, None))

    def watches(self, extension: str) -> bool:
        """Whether this process has a tab of ``extension`` open (asked from the bus thread)."""
        return extension in self._by_extension

    def tabs_of(self, extension: str) -> list[Tab]:
        return list(self._by_extension.get(extension, {}).copy().values())

    def quiet_for(self) -> float:
        """Seconds since the last notification reached this process's tabs."""
        return time.monotonic() - self._last_dispatch

    def _dispatch(self, notification: Notification, deliveries: list[tuple[Tab, Future[Any] | None]]) -> None:
        """On the loop: the process's observers, then a task for each tab that wants the notification."""
        self._last_dispatch = time.monotonic()
        for observer in self._observers:
            try:
                observer(notification)
            except Exception:
                log.exception('an observer failed on %s', notification.kind)
        for tab, prepared in deliveries:
            if tab.wants is None or tab.wants(notification):
                background_tasks.create(
                    self._deliver(tab, notification, prepared), name=f'live-{notification.kind}'
                )

    def _targets(self, notification: Notification) -> list[Tab]:
        """The tabs a notification is for (a snapshot: the registry changes on the loop)."""
        match notification:
            case ScreenPop(extension=extension) | CallStateChanged(extension=extension):
                return self.tabs_of(extension) if extension else []
            case HistoryChanged() | ChatChanged() | RequestsChanged():  # each tab knows its card and badges
                return list(self._tabs.copy().values())
            case OperatorStateChanged(user_id=user_id):  # the operator's chip (dashboards: ``observe``)
                return list(self._by_user.get(user_id, {}).copy().values())
            case MailingProgress():
                return list(self._mailing_pages.copy().values())
        return []

    @staticmethod
    def _prepared(prepare: Preparer, notification: Notification) -> Any:
        try:
            return prepare(notification)
        except Exception as error:  # None: the tab does the work itself
            log.warning('preparing %s for a tab failed: %s', notification.kind, error)
            return None

    @staticmethod
    async def _deliver(tab: Tab, notification: Notification, prepared: Future[Any] | None) -> None:
        if tab.client.is_deleted:  # closed between dispatch and delivery
            return
        try:
            with tab.client:  # a background task has no slot of its own: use the tab's
                await tab.listener(notification, prepared)
        except Exception:
            log.exception('live update %s failed for a tab', notification.kind)


def _unindex(index: dict[Any, dict[str, Tab]], key: object, client_id: str) -> None:
    tabs = index.get(key, {})
    tabs.pop(client_id, None)
    if not tabs:
        index.pop(key, None)
