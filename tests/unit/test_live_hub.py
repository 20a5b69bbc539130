"""The live hub finds an extension's tabs and forgets a tab when it closes."""

from __future__ import annotations

from collections.abc import Callable

from crm.pages.live import LiveHub


class FakeClient:
    """Just what the hub uses of a NiceGUI client: an id and the delete callback."""

    def __init__(self, client_id: str) -> None:
        self.id = client_id
        self.on_delete_handlers: list[Callable[[], None]] = []

    def on_delete(self, handler: Callable[[], None]) -> None:
        self.on_delete_handlers.append(handler)

    def close(self) -> None:
        for handler in self.on_delete_handlers:
            handler()


async def nothing(_body) -> None:
    return None


def test_tabs_by_extension_and_cleanup() -> None:
    hub = LiveHub()
    first, second, boss = FakeClient('a'), FakeClient('b'), FakeClient('c')
    hub.register(first, '101', nothing)
    hub.register(second, '101', nothing)
    hub.register(boss, None, nothing)
    assert {tab.client.id for tab in hub.tabs_of('101')} == {'a', 'b'}
    assert hub.tabs_of('102') == []
    first.close()
    assert [tab.client.id for tab in hub.tabs_of('101')] == ['b']
    second.close()
    assert hub.tabs_of('101') == []
