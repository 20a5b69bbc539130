"""The whole app on a real RabbitMQ (CRM_TEST_AMQP_URL): events pop cards, once, and survive outages."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pika
import pytest
from nicegui.testing import User
from sqlalchemy import func, select

from crm.db.models import Call, Communication
from crm.integrations.bus import DEAD_LETTER_QUEUE, EVENTS_EXCHANGE
from tests.conftest import set_app_env
from tests.factories import make_borrower, unique, unique_phone
from tests.tcp_proxy import TcpProxy
from tests.ui.conftest import WAIT, log_in, until
from tests.ui.test_screen_pop import sees


class Publisher:
    """Speaks like the PBX: JSON bodies on the crm.events exchange, over its own connection."""

    def __init__(self, url: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.channel.exchange_declare(EVENTS_EXCHANGE, 'topic', durable=True)
        self.channel.queue_declare(DEAD_LETTER_QUEUE, durable=True)
        self.channel.queue_purge(DEAD_LETTER_QUEUE)

    def raw(self, routing_key: str, body: bytes) -> None:
        self.channel.basic_publish(EVENTS_EXCHANGE, routing_key, body, pika.BasicProperties(delivery_mode=2))

    def incoming(self, phone: str, extension: str, call_id: str | None = None) -> str:
        call_id = call_id or f'amqp-{unique()}'
        body = {
            'call_id': call_id,
            'from': phone,
            'to_extension': extension,
            'at': '2026-11-26T10:00:00+03:00',
        }
        self.raw('telephony.call.incoming', json.dumps(body).encode())
        return call_id

    def dead_letters(self) -> list[tuple[bytes, dict]]:
        letters = []
        while True:
            method, properties, body = self.channel.basic_get(DEAD_LETTER_QUEUE, auto_ack=True)
            if method is None:
                return letters
            letters.append((body, dict(properties.headers or {})))


@pytest.fixture
def amqp_env(amqp_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    set_app_env(monkeypatch, 'CRM_AMQP_URL', amqp_url)
    set_app_env(monkeypatch, 'CRM_PBX_SIMULATOR', '0')
    return amqp_url


@pytest.fixture
def publisher(amqp_url: str) -> Iterator[Publisher]:
    publisher = Publisher(amqp_url)
    yield publisher
    publisher.connection.close()


@pytest.fixture
def proxy_env(amqp_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TcpProxy]:
    """The app reaches RabbitMQ through a proxy the test can cut."""
    parts = urlsplit(amqp_url)
    proxy = TcpProxy(parts.hostname or '127.0.0.1', parts.port or 5672)
    set_app_env(monkeypatch, 'CRM_AMQP_URL', proxy.url(amqp_url))
    set_app_env(monkeypatch, 'CRM_PBX_SIMULATOR', '0')
    yield proxy
    proxy.close()


def count(sessions, model, **where) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model).filter_by(**where))


async def test_published_call_pops_in_the_operators_tab_only(
    amqp_env, user: User, create_user: Callable[[], User], publisher: Publisher, sessions
) -> None:
    phone = unique_phone()
    make_borrower(sessions, last='Кроликов', first='Эмиль', phones=(phone,))
    other = create_user()
    await log_in(user, 'operator1', 'operator')
    await user.should_see('Мои заёмщики', retries=WAIT)
    await log_in(other, 'operator2', 'operator')
    await other.should_see('Мои заёмщики', retries=WAIT)
    call_id = publisher.incoming(phone, '101')
    await until(lambda: sees(user, 'Кроликов Эмиль'), timeout=10)
    assert not sees(other, 'Кроликов')
    assert count(sessions, Call, call_id=call_id) == 1
    assert count(sessions, Communication, call_id=call_id) == 1


async def test_the_same_event_twice_has_one_effect(
    amqp_env, user: User, publisher: Publisher, sessions
) -> None:
    await log_in(user, 'operator2', 'operator')
    await user.should_see('Мои заёмщики', retries=WAIT)
    phone = unique_phone()
    make_borrower(sessions, last='Дублёв', phones=(phone,))
    call_id = publisher.incoming(phone, '102')
    publisher.incoming(phone, '102', call_id=call_id)
    marker = publisher.incoming(unique_phone(), '102')  # handled after both, in order
    await until(lambda: count(sessions, Call, call_id=marker) == 1, timeout=10)
    assert count(sessions, Call, call_id=call_id) == 1
    assert count(sessions, Communication, call_id=call_id) == 1


async def test_malformed_body_is_dead_lettered_and_consuming_goes_on(
    amqp_env, user: User, publisher: Publisher, sessions
) -> None:
    await log_in(user, 'operator3', 'operator')
    await user.should_see('Мои заёмщики', retries=WAIT)
    publisher.raw('telephony.call.incoming', b'{"call_id": "half')
    publisher.raw('telephony.call.ended', json.dumps({'call_id': 'x'}).encode())
    phone = unique_phone()
    make_borrower(sessions, last='Живучий', phones=(phone,))
    call_id = publisher.incoming(phone, '103')
    await until(lambda: sees(user, 'Живучий'), timeout=10)
    assert count(sessions, Call, call_id=call_id) == 1
    letters = publisher.dead_letters()
    assert [body for body, _ in letters] == [b'{"call_id": "half', b'{"call_id": "x"}']
    assert 'JSON' in letters[0][1]['x-dead-reason'] and 'at' in letters[1][1]['x-dead-reason']


async def test_broker_connection_dropped_and_back_nothing_lost(
    proxy_env: TcpProxy, user: User, publisher: Publisher, sessions
) -> None:
    await log_in(user, 'operator4', 'operator')
    await user.should_see('Мои заёмщики', retries=WAIT)
    proxy_env.cut(refuse=True)  # the app loses the broker
    call_ids = [publisher.incoming(unique_phone(), '104') for _ in range(20)]  # the PBX goes on publishing
    proxy_env.resume()
    await until(lambda: all(count(sessions, Call, call_id=c) == 1 for c in call_ids), timeout=30)
    phone = unique_phone()
    make_borrower(sessions, last='Вернувшийся', phones=(phone,))
    publisher.incoming(phone, '104')
    await until(lambda: sees(user, 'Вернувшийся'), timeout=10)  # and the live path works again
