"""The header's count of new requests: a change shown at once, those after it at most every gap."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from crm.domain.notifications import RequestsChanged
from crm.pages.components.request_badge import RequestLive


class Badge:
    def __init__(self) -> None:
        self.shown: list[int] = []
        self.count = SimpleNamespace(is_deleted=False)

    def show(self, count: int) -> None:
        self.shown.append(count)


def change(count: int | None) -> RequestsChanged:
    return RequestsChanged(new_count=count, borrower_ids=(), request_ids=())


async def test_the_first_change_shows_at_once_and_the_last_of_a_burst_after_the_gap() -> None:
    live = RequestLive(SimpleNamespace())
    live.badge = badge = Badge()  # type: ignore[assignment]
    live.gap_s = 0.2
    heard: list[RequestsChanged] = []

    async def listener(notification: RequestsChanged) -> None:
        heard.append(notification)

    live.listeners.append(listener)
    await live.on_change(change(5))
    assert badge.shown == [5]
    for count in (6, 7, None, 8):
        await live.on_change(change(count))
    assert badge.shown == [5]  # within the gap: nothing more yet
    assert len(heard) == 5  # the pages that list requests hear every change at once
    await asyncio.sleep(0.3)
    assert badge.shown == [5, 8]
    await asyncio.sleep(0.25)
    await live.on_change(change(9))  # the gap has passed: at once again
    assert badge.shown == [5, 8, 9]
