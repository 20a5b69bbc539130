"""RabbitBus against a real broker (CRM_TEST_AMQP_URL), each test on its own prefixed exchanges and queues."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from crm.integrations.bus import Delivery, encode
from crm.integrations.rabbitmq import BusUnavailable, QueueNames, RabbitBus
from tests.tcp_proxy import TcpProxy

WAIT_S = 10.0


@pytest.fixture
def broker(amqp_url: str) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    """A channel of the test's own, beside the buses under test."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    yield connection.channel()
    connection.close()


@pytest.fixture
def make_bus(amqp_url: str, names: QueueNames) -> Iterator[Callable[..., RabbitBus]]:
    buses: list[RabbitBus] = []

    def make(url: str | None = None, **options: Any) -> RabbitBus:
        options = {'reconnect_max_s': 1.0, 'retry_delay_s': 0.1} | options
        bus = RabbitBus(url or amqp_url, names=names, **options)
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        bus.stop()


@pytest.fixture
def proxy(amqp_url: str) -> Iterator[TcpProxy]:
    parts = urlsplit(amqp_url)
    proxy = TcpProxy(parts.hostname or '127.0.0.1', parts.port or 5672)
    yield proxy
    proxy.close()


class Recorder:
    """An event handler that records the batches it got and lets the test wait for them."""

    def __init__(self, decide: Callable[[Delivery], str | None] | None = None) -> None:
        self.batches: list[list[Delivery]] = []
        self._decide = decide or (lambda _delivery: None)
        self._changed = threading.Condition()

    def __call__(self, batch: Sequence[Delivery]) -> list[str | None]:
        results = [self._decide(delivery) for delivery in batch]
        with self._changed:
            self.batches.append(list(batch))
            self._changed.notify_all()
        return results

    @property
    def deliveries(self) -> list[Delivery]:
        with self._changed:
            return [delivery for batch in self.batches for delivery in batch]

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(delivery.body) for delivery in self.deliveries]

    def wait_for(self, count: int, timeout: float = WAIT_S) -> None:
        with self._changed:
            done = self._changed.wait_for(lambda: sum(map(len, self.batches)) >= count, timeout)
        assert done, f'{sum(map(len, self.batches))} of {count} events handled in {timeout} s'


def ignore_ui(_message: dict[str, Any]) -> None:
    pass


def ready_count(channel: Any, queue: str) -> int:
    return channel.queue_declare(queue, passive=True).method.message_count


def wait_until(condition: Callable[[], bool], timeout: float = WAIT_S, what: str = 'condition') -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f'timed out waiting for {what}'
        time.sleep(0.02)


def test_an_event_is_acked_only_after_the_handler_returns(
    make_bus: Callable[..., RabbitBus], names: QueueNames, broker: Any, proxy: TcpProxy, amqp_url: str
) -> None:
    release, holding = threading.Event(), threading.Event()
    calls: list[Delivery] = []

    def hold(batch: Sequence[Delivery]) -> list[str | None]:
        calls.extend(batch)
        holding.set()
        assert release.wait(WAIT_S)
        return [None] * len(batch)

    bus = make_bus(proxy.url(amqp_url))
    bus.start(hold, ignore_ui)
    body = {'call_id': 'c-1', 'from': '79280009977', 'to_extension': '101', 'at': '2024-05-01T10:00:00'}
    bus.publish_event('telephony.call.incoming', body)
    assert holding.wait(WAIT_S)
    assert calls == [Delivery('telephony.call.incoming', encode(body))]
    assert ready_count(broker, names.events_queue) == 0  # delivered, held by the handler

    # the bus's link dies while the handler still holds the message: the broker takes it back
    proxy.cut(refuse=True)
    wait_until(lambda: ready_count(broker, names.events_queue) == 1, what='the unacked event to return')
    proxy.resume()
    release.set()
    wait_until(lambda: len(calls) >= 2, what='the redelivery')  # handled again once reconnected
    assert calls[1] == calls[0]
    bus.stop()
    assert ready_count(broker, names.events_queue) == 0  # acked the second time

    # a new consumer gets only what is published now: nothing was left behind
    recorder = Recorder()
    fresh = make_bus()
    fresh.start(recorder, ignore_ui)
    fresh.publish_event('telephony.call.ended', {'call_id': 'c-1', 'at': '2024-05-01T10:05:00'})
    recorder.wait_for(1)
    assert [d.routing_key for d in recorder.deliveries] == ['telephony.call.ended']


def test_a_rejected_event_is_dead_lettered_and_the_next_one_handled(
    make_bus: Callable[..., RabbitBus], names: QueueNames, broker: Any
) -> None:
    def decide(delivery: Delivery) -> str | None:
        try:
            json.loads(delivery.body)
        except ValueError:
            return 'body is not UTF-8 JSON'
        return None

    recorder = Recorder(decide)
    bus = make_bus()
    bus.start(recorder, ignore_ui)
    bus.publish_raw_event('chat.message.received', b'\xff{not json')
    bus.publish_event('sms.status', {'message_id': 'm-1', 'status': 'delivered', 'at': '2024-05-01T10:00:00'})
    recorder.wait_for(2)
    assert recorder.deliveries[0] == Delivery('chat.message.received', b'\xff{not json')  # not parsed
    assert recorder.deliveries[1].routing_key == 'sms.status'

    wait_until(lambda: ready_count(broker, names.dead_letter_queue) == 1, what='the dead letter')
    [(body, headers)] = bus.dead_letters()
    assert body == b'\xff{not json'
    assert headers == {
        'x-dead-reason': 'body is not UTF-8 JSON',
        'x-original-routing-key': 'chat.message.received',
    }
    bus.stop()
    assert ready_count(broker, names.events_queue) == 0
    assert ready_count(broker, names.dead_letter_queue) == 0  # dead_letters() took it


def test_a_failing_handler_gets_the_batch_again(
    make_bus: Callable[..., RabbitBus], names: QueueNames, broker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    failed = threading.Event()
    recorder = Recorder()

    def flaky(batch: Sequence[Delivery]) -> list[str | None]:
        if not failed.is_set():
            failed.set()
            raise RuntimeError('database is down')
        return recorder(batch)

    publisher = make_bus(consume_events=False)
    publisher.start(Recorder(), ignore_ui)
    for n in range(3):
        publisher.publish_event('telephony.call.answered', {'call_id': f'c-{n}'})

    bus = make_bus()
    bus.start(flaky, ignore_ui)
    recorder.wait_for(3)
    assert failed.is_set()
    assert sorted(body['call_id'] for body in recorder.bodies()) == ['c-0', 'c-1', 'c-2']
    bus.stop()
    assert ready_count(broker, names.events_queue) == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_the_consumer_comes_back_after_the_broker_link_drops(
    make_bus: Callable[..., RabbitBus], proxy: TcpProxy, amqp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    bus = make_bus(proxy.url(amqp_url))
    bus.start(recorder, ignore_ui)
    direct = make_bus(consume_events=False)  # publishes straight to the broker, past the proxy
    direct.start(Recorder(), ignore_ui)

    expected = set()
    for n in range(10):
        direct.publish_event('telephony.call.incoming', {'call_id': f'before-{n}'})
        expected.add(f'before-{n}')
    recorder.wait_for(10)

    connections_before = proxy.accepted
    proxy.cut(refuse=True)
    for n in range(20):
        direct.publish_event('telephony.call.incoming', {'call_id': f'during-{n}'})
        expected.add(f'during-{n}')
    time.sleep(0.3)  # let the bus fail a reconnect attempt or two against the refusing proxy
    proxy.resume()
    bus.publish_event('telephony.call.incoming', {'call_id': 'after'})  # its publisher reconnects too
    expected.add('after')

    wait_until(lambda: {b['call_id'] for b in recorder.bodies()} >= expected, what='every event')
    got = [body['call_id'] for body in recorder.bodies()]
    assert set(got) == expected
    duplicates = len(got) - len(set(got))
    assert duplicates <= 10, got  # only unacked ones at the cut can come twice
    assert proxy.accepted > connections_before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], 'a reconnect is not an ERROR'
    assert any('reconnected' in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_ui_notifications_reach_every_process_once(make_bus: Callable[..., RabbitBus]) -> None:
    heard: dict[str, list[dict[str, Any]]] = {'a': [], 'b': []}
    first, second = make_bus(), make_bus()
    first.start(Recorder(), heard['a'].append)
    second.start(Recorder(), heard['b'].append)
    message = {'type': 'ui.screen_pop', 'extension': '101', 'borrower_id': 7}
    first.publish_ui(message)
    assert heard['a'] == [message]  # its own tabs hear it before the broker is asked
    wait_until(lambda: heard['b'] == [message], what='the other process')
    second.publish_ui({'kind': 'marker'})  # sent after: once it is heard, the first copy would be too
    wait_until(lambda: {'kind': 'marker'} in heard['a'], what='the marker')
    assert heard['a'] == [message, {'kind': 'marker'}]  # its own copy from the fanout was dropped


def test_events_that_wait_are_handled_in_batches(make_bus: Callable[..., RabbitBus]) -> None:
    count = 500
    publisher = make_bus(consume_events=False)
    publisher.start(Recorder(), ignore_ui)
    for n in range(count):
        publisher.publish_event('telephony.call.ended', {'call_id': f'c-{n}', 'duration_s': n})

    recorder = Recorder()
    bus = make_bus(prefetch=200, max_batch=100)
    began = time.perf_counter()
    bus.start(recorder, ignore_ui)
    recorder.wait_for(count)
    elapsed = time.perf_counter() - began
    sizes = [len(batch) for batch in recorder.batches]
    assert sorted(body['call_id'] for body in recorder.bodies()) == sorted(f'c-{n}' for n in range(count))
    assert max(sizes) > 1
    assert max(sizes) <= 100
    rate = count / elapsed
    print(f'\n{count} events, {len(sizes)} batches (max {max(sizes)}), {elapsed:.3f} s: {rate:.0f}/s')


def test_commands_reach_subscribers(make_bus: Callable[..., RabbitBus]) -> None:
    heard: list[tuple[str, str, dict[str, Any]]] = []
    both = threading.Barrier(3)

    def subscriber(name: str) -> Callable[[str, dict[str, Any]], None]:
        def on_command(routing_key: str, body: dict[str, Any]) -> None:
            heard.append((name, routing_key, body))
            both.wait(WAIT_S)

        return on_command

    early, late = make_bus(), make_bus()
    early.subscribe_commands(subscriber('early'))  # before start
    early.start(Recorder(), ignore_ui)
    late.start(Recorder(), ignore_ui)
    late.subscribe_commands(subscriber('late'))  # after start
    command = {'call_id': 'c-9', 'extension': '101', 'number': '79280009977'}
    late.publish_command('telephony.dial', command)
    both.wait(WAIT_S)
    assert sorted(heard) == [('early', 'telephony.dial', command), ('late', 'telephony.dial', command)]


def test_stop_is_prompt_and_closes_the_consumer(
    make_bus: Callable[..., RabbitBus], names: QueueNames, broker: Any
) -> None:
    bus = make_bus()
    bus.start(Recorder(), ignore_ui)
    assert broker.queue_declare(names.events_queue, passive=True).method.consumer_count == 1
    began = time.perf_counter()
    bus.stop()
    assert time.perf_counter() - began < 2
    assert broker.queue_declare(names.events_queue, passive=True).method.consumer_count == 0
    assert not [t for t in threading.enumerate() if t.name == 'crm-rabbitmq' and t.is_alive()]


def test_a_deleted_events_queue_is_declared_again(
    make_bus: Callable[..., RabbitBus], names: QueueNames, broker: Any, amqp_url: str
) -> None:
    def consumers() -> int:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        try:
            return connection.channel().queue_declare(names.events_queue, passive=True).method.consumer_count
        except ChannelClosedByBroker:  # 404: not there (yet)
            return 0
        finally:
            if connection.is_open:
                connection.close()

    recorder = Recorder()
    bus = make_bus()
    bus.start(recorder, ignore_ui)
    broker.queue_delete(names.events_queue)  # the broker cancels the bus's consumer
    wait_until(lambda: consumers() == 1, what='the queue to be declared and consumed again')
    bus.publish_event('sms.status', {'message_id': 'm-2', 'status': 'failed', 'at': '2024-05-01T10:00:00'})
    recorder.wait_for(1)


def test_an_unreachable_broker_fails_start_with_one_clear_line(names: QueueNames) -> None:
    bus = RabbitBus('amqp://guest:secret@127.0.0.1:1/%2F', names=names)
    with pytest.raises(BusUnavailable) as error:
        bus.start(Recorder(), ignore_ui)
    message = str(error.value)
    assert message.startswith('CRM_AMQP_URL=amqp://guest:***@127.0.0.1:1/')
    assert 'secret' not in message and '\n' not in message
