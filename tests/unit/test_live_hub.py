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


class DeliveringClient(FakeClient):
    """Enough of a NiceGUI client for the hub to deliver to: a context manager, never deleted."""

    is_deleted = False

    def __enter__(self) -> DeliveringClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None


async def test_a_screen_pop_is_prepared_off_the_bus_and_the_loop_and_delivered_at_once(monkeypatch) -> None:
    """The tab gets the pop without waiting for the card; the card is read on the hub's reader thread."""
    import asyncio
    import threading
    from datetime import UTC, datetime

    from nicegui import core

    from crm.domain.notifications import ScreenPop, to_wire

    monkeypatch.setattr(core, 'loop', asyncio.get_running_loop())  # what NiceGUI's startup sets
    hub = LiveHub()
    hub.attach_loop(asyncio.get_running_loop())
    read = threading.Event()
    prepared_in: list[str] = []
    got: list[tuple[str, object]] = []
    done = asyncio.Event()

    def prepare(notification) -> str:
        read.wait(5)  # the card is slow to read: the tab must have the pop already
        prepared_in.append(threading.current_thread().name)
        return f'card for {notification.call_id}'

    async def listener(notification, prepared) -> None:
        got.append((notification.call_id, None))
        read.set()
        got.append((notification.call_id, await asyncio.wrap_future(prepared)))
        done.set()

    hub.register(DeliveringClient('a'), '101', listener, prepare)
    pop = ScreenPop('101', 'c1', 7, 'Анон Ананас', '79280009977', datetime(2026, 11, 26, 9, tzinfo=UTC))
    bus_thread = threading.Thread(target=hub.on_ui, args=(to_wire([pop]),), name='bus')
    bus_thread.start()
    bus_thread.join(1)
    assert not bus_thread.is_alive()  # the bus went on at once
    await asyncio.wait_for(done.wait(), 5)
    assert got == [('c1', None), ('c1', 'card for c1')]
    assert prepared_in and prepared_in[0].startswith('crm-live-read')


def test_closing_the_hub_waits_for_reads_in_flight_and_takes_no_more() -> None:
    import threading
    import time

    hub = LiveHub()
    started, finished = threading.Event(), threading.Event()

    def slow_read() -> None:
        started.set()
        time.sleep(0.2)
        finished.set()

    hub._readers.submit(slow_read)
    started.wait(5)
    hub.close()
    assert finished.is_set()
    hub.on_ui({'kind': 'history', 'borrower_id': 1})  # after close: ignored, nothing scheduled


async def test_a_state_goes_to_its_operators_tabs_and_a_history_to_the_tabs_that_want_it(monkeypatch) -> None:
    """Each notification is heard once by the process's observers; a tab gets only what concerns it."""
    import asyncio
    from datetime import UTC, datetime

    from nicegui import core

    from crm.domain.notifications import HistoryChanged, OperatorStateChanged, to_wire
    from crm.domain.operator_states import OperatorState

    monkeypatch.setattr(core, 'loop', asyncio.get_running_loop())
    hub = LiveHub()
    hub.attach_loop(asyncio.get_running_loop())
    got: dict[str, list[str]] = {'ann': [], 'bob': [], 'boss': []}
    heard: list[str] = []

    def listener(name: str):
        async def listen(notification, _prepared) -> None:
            got[name].append(notification.kind)

        return listen

    hub.observe(lambda notification: heard.append(notification.kind))
    another_card = lambda n: not isinstance(n, HistoryChanged)  # noqa: E731
    hub.register(DeliveringClient('a'), '101', listener('ann'), user_id=1, wants=another_card)
    hub.register(DeliveringClient('b'), '102', listener('bob'), user_id=2, wants=lambda n: True)
    hub.register(DeliveringClient('c'), None, listener('boss'), user_id=3)
    moment = datetime(2026, 11, 26, 9, tzinfo=UTC)
    hub.on_ui(to_wire([OperatorStateChanged(1, OperatorState.READY, None, moment, None), HistoryChanged(7)]))
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert heard == ['operator_state', 'history']
    assert got == {'ann': ['operator_state'], 'bob': ['history'], 'boss': ['history']}
    hub.on_ui(to_wire([OperatorStateChanged(1, OperatorState.BREAK, 'lunch', moment, None)]))
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert got == {'ann': ['operator_state'] * 2, 'bob': ['history'], 'boss': ['history']}
