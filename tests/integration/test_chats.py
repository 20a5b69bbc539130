"""Chats on the real database: messages in (set-wise, once), unknown senders linked, unread counts,
answers out as ``chat.reply`` (in-process and over a real RabbitMQ), canned answers, none of it counted
by 230-FZ."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pika
import pytest
from sqlalchemy import event, func, select

from crm import bootstrap
from crm.bootstrap import System
from crm.config import Settings
from crm.db.models import AuditEntry, Borrower, Chat, Communication, MessageTemplate
from crm.domain import Role
from crm.domain.errors import NotFound, ServiceError
from crm.domain.notifications import ChatChanged, HistoryChanged, from_wire
from crm.integrations.bus import Delivery, RecordingBus
from crm.integrations.rabbitmq import RabbitBus
from crm.services.auth import to_actor
from crm.services.chats import ChatService
from crm.services.compliance import counted_messages
from crm.services.inbound import InboundRouter
from tests.conftest import TEST_NOW
from tests.factories import make_borrower, make_user, unique, unique_phone

AT = '2026-11-26T12:00:00+03:00'


@pytest.fixture
def chats(system) -> ChatService:
    return system.services.chats


def message(chat_id: str, sender: str, text: str, at: str = AT) -> dict[str, Any]:
    return {'chat_id': chat_id, 'from': sender, 'text': text, 'at': at}


def deliver(inbound: InboundRouter, *bodies: dict[str, Any]) -> list[str | None]:
    return inbound.handle_deliveries(
        [Delivery('chat.message.received', json.dumps(body).encode()) for body in bodies]
    )


def chat_of(sessions, chat_id: str) -> Chat | None:
    with sessions() as session:
        return session.scalar(select(Chat).where(Chat.chat_id == chat_id))


def messages_of(sessions, chat_id: str) -> list[Communication]:
    with sessions() as session:
        return list(
            session.scalars(
                select(Communication).where(Communication.chat_id == chat_id).order_by(Communication.id)
            )
        )


def told(bus: RecordingBus, kind: type) -> list[Any]:
    return [n for body in bus.ui for n in from_wire(body) if isinstance(n, kind)]


def test_a_message_from_a_borrowers_phone_lands_in_the_history_and_the_chat(
    inbound, bus, sessions, operator
) -> None:
    phone = unique_phone()
    borrower = make_borrower(sessions, last='Чатов', phones=(phone,), operator_id=operator.id)
    chat_id = f'chat-{unique()}'
    assert deliver(inbound, message(chat_id, '8' + phone[1:], 'Здравствуйте, когда платёж?')) == [None]

    chat = chat_of(sessions, chat_id)
    assert chat is not None and chat.borrower_id == borrower.id and chat.unread == 1
    assert chat.sender == '8' + phone[1:] and chat.started_at == chat.last_message_at == TEST_NOW
    (stored,) = messages_of(sessions, chat_id)
    assert (stored.borrower_id, stored.channel, stored.direction) == (borrower.id, 'chat', 'in')
    assert (stored.body, stored.phone, stored.collection, stored.operator_id) == (
        'Здравствуйте, когда платёж?',
        phone,
        False,
        None,
    )
    with sessions() as session:
        assert session.get(Borrower, borrower.id).last_contact_at == TEST_NOW
        assert counted_messages(session, [borrower.id], TEST_NOW - timedelta(days=32)) == {borrower.id: []}
    assert HistoryChanged(borrower.id) in told(bus, HistoryChanged)
    (change,) = told(bus, ChatChanged)
    assert (change.chat_id, change.borrower_id, change.operator_id, change.event) == (
        chat_id,
        borrower.id,
        operator.id,
        'message',
    )
    assert (change.name, change.unread, change.operator_unread) == ('Чатов Тест Тестович', 1, 1)


def test_a_sender_is_found_by_pin_and_later_messages_join_the_chat(inbound, sessions) -> None:
    borrower = make_borrower(sessions, last='Пинов')
    chat_id = f'chat-{unique()}'
    deliver(inbound, message(chat_id, borrower.pin, 'Первое', at='2026-11-26T12:00:00+03:00'))
    deliver(inbound, message(chat_id, borrower.pin, 'Второе', at='2026-11-26T12:01:00+03:00'))
    chat = chat_of(sessions, chat_id)
    assert chat.borrower_id == borrower.id and chat.unread == 2
    assert chat.last_message_at == TEST_NOW + timedelta(minutes=1)
    assert [m.body for m in messages_of(sessions, chat_id)] == ['Первое', 'Второе']
    assert {m.borrower_id for m in messages_of(sessions, chat_id)} == {borrower.id}
    assert {m.phone for m in messages_of(sessions, chat_id)} == {None}  # a PIN is no phone number


def test_the_card_answers_in_the_chat_the_borrower_last_wrote_in(inbound, chats, sessions, operator) -> None:
    borrower = make_borrower(sessions, operator_id=operator.id)
    older, newer = f'chat-{unique()}', f'chat-{unique()}'
    deliver(inbound, message(older, borrower.pin, 'Старый чат', at='2026-11-26T12:30:00+03:00'))
    deliver(
        inbound, message(newer, borrower.pin, 'Новый чат', at='2026-11-26T12:10:00+03:00')
    )  # a lagging clock
    conversation = chats.conversation(operator, borrower.id)
    assert conversation is not None and conversation.chat_id == newer
    assert [line.text for line in conversation.lines] == ['Новый чат', 'Старый чат']  # by time


def test_a_repeated_message_has_one_effect_in_a_batch_and_across_batches(inbound, sessions) -> None:
    borrower = make_borrower(sessions, phones=(unique_phone(),))
    chat_id = f'chat-{unique()}'
    body = message(chat_id, borrower.pin, 'Повтор')
    assert deliver(inbound, body, body, message(chat_id, borrower.pin, 'Другое')) == [None, None, None]
    assert deliver(inbound, body) == [None]
    assert [m.body for m in messages_of(sessions, chat_id)] == ['Повтор', 'Другое']
    assert chat_of(sessions, chat_id).unread == 2


def test_a_burst_of_hundreds_is_recorded_with_a_fixed_number_of_statements(
    inbound, bus, engine, sessions, operator
) -> None:
    phones = [unique_phone() for _ in range(50)]
    for phone in phones:
        make_borrower(sessions, last='Пачкин', phones=(phone,), operator_id=operator.id)
    base = unique()
    bodies = []
    for i in range(300):  # 100 chats: 50 borrowers by phone, 50 unknown senders; 3 messages each
        sender = phones[i % 50] if i % 100 < 50 else f'7000{base:04d}{i % 100:03d}'
        minute = i // 100
        bodies.append(
            message(f'burst-{base}-{i % 100}', sender, f'Сообщение {i}', f'2026-11-26T06:0{minute}:00Z')
        )
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(engine, 'before_cursor_execute', count)
    try:
        assert deliver(inbound, *bodies) == [None] * 300
    finally:
        event.remove(engine, 'before_cursor_execute', count)
    assert len(statements) <= 25, statements  # the same few for 1 message or 300: no query per message
    with sessions() as session:
        chats = session.scalars(select(Chat).where(Chat.chat_id.like(f'burst-{base}-%'))).all()
        stored = session.scalar(
            select(func.count())
            .select_from(Communication)
            .where(Communication.chat_id.like(f'burst-{base}-%'))
        )
    assert len(chats) == 100 and stored == 300
    assert sorted(c.unread for c in chats) == [3] * 100
    assert sum(c.borrower_id is None for c in chats) == 50
    changes = told(bus, ChatChanged)
    assert len(changes) == 100 and {c.operator_unread for c in changes if c.borrower_id} == {50}


def test_an_unknown_sender_waits_in_the_queue_until_linked(inbound, chats, bus, sessions, operator) -> None:
    queue_before = chats.unread(operator).queue
    chat_id = f'chat-{unique()}'
    stranger = f'+7 000 {unique():03d}-00-00'
    deliver(inbound, message(chat_id, stranger, 'Кто мне звонил?', at='2026-11-26T23:00:00+03:00'))
    chat = chat_of(sessions, chat_id)
    assert chat.borrower_id is None and chat.sender == stranger
    assert [m.borrower_id for m in messages_of(sessions, chat_id)] == [None]
    assert chats.unread(operator).queue == queue_before + 1
    assert chat_id in [c.chat_id for c in chats.inbox(operator).queue]
    (change,) = told(bus, ChatChanged)
    assert (change.borrower_id, change.operator_id, change.name) == (None, None, stranger)
    assert change.queue_unread == queue_before + 1

    shown = chats.chat(operator, chat_id)  # anyone reads the common queue
    assert [line.text for line in shown.lines] == ['Кто мне звонил?'] and shown.unread == 0
    assert chats.unread(operator).queue == queue_before

    borrower = make_borrower(sessions, last='Найденов', operator_id=operator.id)
    chats.link(operator, chat_id, borrower.id)
    assert chat_of(sessions, chat_id).borrower_id == borrower.id
    assert [m.borrower_id for m in messages_of(sessions, chat_id)] == [borrower.id]
    with sessions() as session:
        entry = session.scalar(
            select(AuditEntry).where(AuditEntry.action == 'chat.link', AuditEntry.borrower_id == borrower.id)
        )
        assert entry is not None and entry.user_id == operator.id and chat_id in entry.details
        assert session.get(Borrower, borrower.id).last_contact_at == TEST_NOW + timedelta(hours=11)
    assert HistoryChanged(borrower.id) in told(bus, HistoryChanged)
    assert told(bus, ChatChanged)[-1].event == 'linked'
    with pytest.raises(ServiceError, match='уже привязан'):
        chats.link(operator, chat_id, borrower.id)
    with pytest.raises(NotFound):
        chats.link(operator, 'no-such-chat', borrower.id)
    deliver(inbound, message(chat_id, stranger, 'Это я', at='2026-11-26T23:05:00+03:00'))
    assert [m.borrower_id for m in messages_of(sessions, chat_id)] == [borrower.id, borrower.id]


def test_unread_counts_and_who_reads_a_chat(inbound, chats, sessions, operator) -> None:
    supervisor = to_actor(make_user(sessions, role=Role.SUPERVISOR))
    first = make_borrower(sessions, operator_id=operator.id)
    second = make_borrower(sessions, operator_id=operator.id)
    assert chats.unread(operator).mine == 0
    deliver(inbound, message(f'c-{unique()}', first.pin, 'Раз'), message(f'c-{unique()}', first.pin, 'Два'))
    deliver(inbound, message(f'c-{unique()}', second.pin, 'Три'))
    assert chats.unread(operator).mine == 3  # chats with unread messages, not messages
    assert {c.borrower_id for c in chats.inbox(operator).mine} == {first.id, second.id}

    seen = chats.conversation(supervisor, first.id)  # not the one to read it: still unread
    assert seen is not None and seen.unread == 2 and [line.text for line in seen.lines] == ['Раз', 'Два']
    assert chats.unread(operator).mine == 3
    read = chats.conversation(operator, first.id)
    assert read is not None and read.unread == 0
    assert chats.unread(operator).mine == 1
    assert chats.conversation(operator, make_borrower(sessions).id) is None  # never wrote


def test_an_answer_goes_out_as_chat_reply_and_lands_in_the_history(
    inbound, chats, bus, sessions, operator
) -> None:
    borrower = make_borrower(sessions, last='Ответов', operator_id=operator.id)
    chat_id = f'chat-{unique()}'
    deliver(inbound, message(chat_id, borrower.pin, 'Можно отсрочку?'))
    bus.ui.clear()
    line = chats.reply(operator, chat_id, '  Да, оформим до пятницы.  ')
    assert (line.direction, line.text, line.operator_name) == (
        'out',
        'Да, оформим до пятницы.',
        operator.full_name,
    )
    assert bus.commands[-1] == (
        'chat.reply',
        {
            'chat_id': chat_id,
            'text': 'Да, оформим до пятницы.',
            'operator': operator.full_name,
            'message_id': f'crm-chat-{line.id}',
        },
    )
    answer = messages_of(sessions, chat_id)[-1]
    assert (answer.direction, answer.operator_id, answer.borrower_id, answer.collection) == (
        'out',
        operator.id,
        borrower.id,
        False,
    )
    assert answer.delivery_status is None and answer.started_at == TEST_NOW
    assert chat_of(sessions, chat_id).unread == 0  # answering is reading
    with sessions() as session:  # inside a chat the borrower started: not a collection contact
        assert counted_messages(session, [borrower.id], TEST_NOW - timedelta(days=32)) == {borrower.id: []}
    assert HistoryChanged(borrower.id) in told(bus, HistoryChanged)
    assert told(bus, ChatChanged)[-1].event == 'reply'


@pytest.mark.parametrize(
    ('text', 'refusal'),
    [
        ('', 'Введите текст ответа'),
        ('   ', 'Введите текст ответа'),
        ('я' * 4001, 'длиннее 4 000 символов'),
        ('a\x00b', 'недопустимый символ'),
    ],
)
def test_an_empty_or_too_long_answer_is_refused(
    inbound, chats, bus, sessions, operator, text, refusal
) -> None:
    borrower = make_borrower(sessions)
    chat_id = f'chat-{unique()}'
    deliver(inbound, message(chat_id, borrower.pin, 'Вопрос'))
    sent = len(bus.commands)
    with pytest.raises(ServiceError, match=refusal):
        chats.reply(operator, chat_id, text)
    assert len(bus.commands) == sent and len(messages_of(sessions, chat_id)) == 1
    chats.reply(operator, chat_id, 'я' * 4000)  # the limit itself is fine


def test_an_answer_to_a_chat_the_borrower_did_not_start_is_refused(chats, bus, operator) -> None:
    with pytest.raises(ServiceError, match='только в чат, который начал заёмщик'):
        chats.reply(operator, f'never-{unique()}', 'Добрый день')
    assert bus.commands == []


def test_an_answer_the_bus_did_not_take_is_kept_as_undelivered(
    inbound, chats, bus, sessions, operator, monkeypatch
) -> None:
    borrower = make_borrower(sessions)
    chat_id = f'chat-{unique()}'
    deliver(inbound, message(chat_id, borrower.pin, 'Алло'))

    def broken(_key: str, _body: dict) -> None:
        raise ConnectionError('broker away')

    monkeypatch.setattr(bus, 'publish_command', broken)
    with pytest.raises(ServiceError, match='не ушёл в чат'):
        chats.reply(operator, chat_id, 'Вы здесь?')
    answer = messages_of(sessions, chat_id)[-1]
    assert (answer.body, answer.delivery_status) == ('Вы здесь?', 'failed')


def test_canned_answers_are_the_chat_templates_filled_in_for_the_borrower(chats, sessions, operator) -> None:
    borrower = make_borrower(sessions, last='Шаблонов', first='Иван', middle='Петрович')
    name = f'Ответ {unique()}'
    with sessions.begin() as session:
        session.add_all(
            [
                MessageTemplate(
                    channel='sms',
                    kind='chat_answer',
                    name=name,
                    body='{{ name }}, ваш долг {{ total_debt }}. {{ creditor_name }}, {{ contact_phone }}',
                    updated_at=TEST_NOW,
                ),
                MessageTemplate(
                    channel='sms',
                    kind='chat_answer',
                    name=name + ' (обещание)',
                    body='Ждём {{ promise_amount }}. {{ creditor_name }}, {{ contact_phone }}',
                    updated_at=TEST_NOW,
                ),
                MessageTemplate(
                    channel='sms', kind='overdue', name=name + ' (не ответ)', body='x', updated_at=TEST_NOW
                ),
            ]
        )
    answers = {a.name: a for a in chats.canned(operator, borrower.id)}
    assert name + ' (не ответ)' not in answers
    assert answers[name].text.startswith('Иван Петрович, ваш долг 0,00 ₽.') and answers[name].problem is None
    assert answers[name + ' (обещание)'].text is None
    assert 'promise_amount' in answers[name + ' (обещание)'].problem


def test_a_chat_message_over_the_http_api_is_recorded_once(engine, database_url, clock, sessions) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from crm.api import routes

    settings = Settings(database_url=database_url, api_token='chat-api-token')
    services = bootstrap.build(settings, engine=engine, bus=RecordingBus(), clock=clock).services
    app = FastAPI()
    routes.install(app, services)
    client = TestClient(app)
    borrower = make_borrower(sessions, phones=(unique_phone(),))
    chat_id = f'api-chat-{unique()}'
    body = {'type': 'chat.message.received'} | message(chat_id, borrower.pin, '<b>жирный</b>')
    headers = {'Authorization': 'Bearer chat-api-token'}
    assert client.post('/api/v1/events', json=body, headers=headers).json()['status'] == 'accepted'
    assert client.post('/api/v1/events', json=body, headers=headers).json()['status'] == 'duplicate'
    assert [m.body for m in messages_of(sessions, chat_id)] == ['<b>жирный</b>']  # kept as it came
    bad = client.post('/api/v1/events', json=body | {'text': 'я' * 10_001}, headers=headers)
    assert bad.status_code == 422 and 'text' in bad.text


def test_the_simulator_round_trip_in_process(engine, database_url, clock, sessions, operator) -> None:
    """The built-in chat system speaks the contract: its message lands, the answer comes back to it."""
    bus = RecordingBus()
    built = bootstrap.build(Settings(database_url=database_url), engine=engine, bus=bus, clock=clock)
    simulator = built.services.chat_simulator
    assert simulator is not None
    built.start(lambda _body: None)
    try:
        borrower = make_borrower(sessions, last='Симулянтов', phones=(unique_phone(),))
        chat = simulator.write(borrower.pin, 'Привет из симулятора')
        bus.drain()
        assert chat_of(sessions, chat.chat_id).borrower_id == borrower.id
        built.services.chats.reply(operator, chat.chat_id, 'Здравствуйте!')
        (shown,) = [c for c in simulator.chats() if c.chat_id == chat.chat_id]
        assert [(line.from_borrower, line.text, line.operator) for line in shown.lines] == [
            (True, 'Привет из симулятора', None),
            (False, 'Здравствуйте!', operator.full_name),
        ]
        with pytest.raises(ServiceError, match='Введите текст'):
            simulator.write(borrower.pin, '  ')
    finally:
        built.stop(keep_engine=True)  # the engine is the session's


# --- over a real RabbitMQ --------------------------------------------------------------------------


@pytest.fixture
def rabbit_system(engine, database_url, clock, amqp_url, names) -> Iterator[System]:
    bus = RabbitBus(amqp_url, names=names, reconnect_max_s=1.0, retry_delay_s=0.1)
    system = bootstrap.build(Settings(database_url=database_url), engine=engine, bus=bus, clock=clock)
    heard: list[dict[str, Any]] = []
    system.start(heard.append)
    yield system
    system.stop(keep_engine=True)


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.05)


def take(channel: Any, queue: str, timeout: float = 10.0) -> dict[str, Any]:
    """The next message on ``queue``, as JSON."""
    deadline = time.monotonic() + timeout
    while True:
        _method, _properties, body = channel.basic_get(queue, auto_ack=True)
        if body is not None:
            return json.loads(body)
        assert time.monotonic() < deadline, f'nothing on {queue}'
        time.sleep(0.05)


def test_chat_in_and_the_answer_out_over_rabbitmq(rabbit_system, amqp_url, names, sessions, operator) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    try:
        replies = channel.queue_declare('', exclusive=True).method.queue  # the chat system's queue
        channel.queue_bind(replies, names.commands_exchange, routing_key='chat.reply')
        borrower = make_borrower(sessions, last='Кроликов', phones=(unique_phone(),), operator_id=operator.id)
        chat_id = f'amqp-chat-{unique()}'
        first = json.dumps(message(chat_id, borrower.pin, 'Через брокер')).encode()
        later = json.dumps(message(chat_id, borrower.pin, 'Ещё одно', '2026-11-26T12:01:00+03:00')).encode()
        for body in (first, first, later):  # the chat system sent the first twice: one effect
            channel.basic_publish(names.events_exchange, 'chat.message.received', body)
        wait_for(lambda: len(messages_of(sessions, chat_id)) == 2)  # in order: the repeat came before
        assert chat_of(sessions, chat_id).unread == 2

        line = rabbit_system.services.chats.reply(operator, chat_id, 'Ответ через брокер')
        assert take(channel, replies) == {
            'chat_id': chat_id,
            'text': 'Ответ через брокер',
            'operator': operator.full_name,
            'message_id': f'crm-chat-{line.id}',
        }
        assert [(m.direction, m.body) for m in messages_of(sessions, chat_id)] == [
            ('in', 'Через брокер'),
            ('in', 'Ещё одно'),
            ('out', 'Ответ через брокер'),
        ]
        assert chat_of(sessions, chat_id).unread == 0
    finally:
        connection.close()


def test_the_simulator_round_trip_over_rabbitmq(rabbit_system, sessions, operator) -> None:
    simulator = rabbit_system.services.chat_simulator
    assert simulator is not None  # attached to the bus's commands when the system started
    borrower = make_borrower(sessions, phones=(unique_phone(),))
    chat = simulator.write(borrower.pin, 'Симулятор через брокер')
    wait_for(lambda: chat_of(sessions, chat.chat_id) is not None)
    rabbit_system.services.chats.reply(operator, chat.chat_id, 'Слышу вас')

    def conversation() -> list:
        return next(c for c in simulator.chats() if c.chat_id == chat.chat_id).lines

    wait_for(lambda: len(conversation()) == 2)
    last = conversation()[-1]
    assert (last.from_borrower, last.text, last.operator) == (False, 'Слышу вас', operator.full_name)
