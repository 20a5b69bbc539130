"""Calling a service from a page: off the event loop, with its Russian refusal shown to the user.

Services block (database, argon2), so a page never calls them on the event loop. ``service`` runs one in
NiceGUI's thread pool and raises ``Stopping`` (a ``CancelledError``, which NiceGUI treats as a cancelled
handler, not an error) when the app is shutting down — instead of the ``None`` that ``run.io_bound``
returns then, which a page would otherwise take for a result. ``attempt`` does the same and turns a
``ServiceError`` into a notification for the user. Both carry the browser's address into the thread, so
the audit log knows where an act came from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal, ParamSpec, TypeVar

from nicegui import run, ui

from crm.domain.errors import ServiceError
from crm.domain.origin import acting_from, current_address

P = ParamSpec('P')
R = TypeVar('R')
NotifyType = Literal['positive', 'negative', 'warning', 'info', 'ongoing']


class Stopping(asyncio.CancelledError):
    """The app is shutting down: the page's work is cancelled."""


async def service(action: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``action(*args, **kwargs)`` in a worker thread."""

    address = current_address() or _page_address()

    def boxed() -> tuple[R]:
        with acting_from(address):  # what it audits comes from this browser (crm.domain.origin)
            return (action(*args, **kwargs),)

    result = await run.io_bound(boxed)
    if result is None:
        raise Stopping()
    return result[0]


def _page_address() -> str | None:
    """The browser's address of the page this code runs for: a click comes over the page's websocket,
    not as a request the login middleware saw. None outside a page (a timer of no client)."""
    try:
        request = ui.context.client.request
    except (RuntimeError, AttributeError):
        return None
    client = getattr(request, 'client', None)
    return client.host if client is not None else None


async def attempt(action: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R | None:
    """Like ``service``, but a refusal is shown (a warning notification) and gives None."""
    try:
        return await service(action, *args, **kwargs)
    except ServiceError as error:
        ui.notify(error.message, type='warning', multi_line=True)
        return None
