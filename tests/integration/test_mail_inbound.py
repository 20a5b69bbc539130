"""E-mails in (``email.received``) on the real database: a known sender's letter in the history and in their
request (any letter case), once per message id; an unknown or shared address recorded without a borrower;
bad bodies dead-lettered or a field-named 422 with nothing written; over the API and a real RabbitMQ."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from crm import bootstrap
from crm.api import routes
from crm.bootstrap import System
from crm.config import Settings
from crm.db.models import Borrower, Communication, InboundEvent, Request, RequestEvent
from crm.domain.notifications import HistoryChanged, RequestsChanged, from_wire
from crm.domain.requests import RequestEventKind
from crm.integrations.bus import Delivery, RecordingBus
from crm.integrations.rabbitmq import RabbitBus
from crm.pages.components import card_markup
from crm.services.compliance import counted_messages
from crm.services.event_schemas import email_key
from crm.services.inbound import InboundRouter
from tests.conftest import TEST_NOW
from tests.factories import make_borrower, unique

AT = '2026-11-26T12:00:00+03:00'
TOKEN = 'mail-inbound-token'


def letter(sender: str, text: str = 'Прошу прислать график платежей', **fields: Any) -> dict[str, Any]:
    return {
        'message_id': f'<{unique()}.mail@example.org>',
        'from': sender,
        'subject': 'График платежей',
        'text': text,
        'at': AT,
    } | fields


def deliver(inbound: InboundRouter, *bodies: dict[str, Any] | bytes) -> list[str | None]:
    return inbound.handle_deliveries(
        [
            Delivery('email.received', body if isinstance(body, bytes) else json.dumps(body).encode())
            for body in bodies
        ]
    )


def with_email(sessions, address: str, **values: Any) -> Borrower:
    borrower = make_borrower(sessions, **values)
    with sessions.begin() as session:
        session.execute(update(Borrower).where(Borrower.id == borrower.id).values(email=address))
    return borrower


def address() -> str:
    return f'Zaemshik.{unique()}@Example.ORG'


def letters_of(sessions, borrower_id: int | None, text: str | None = None) -> list[Communication]:
    """The inbound e-mails of a borrower (of nobody: those with ``text``)."""
    with sessions() as session:
        who = (
            Communication.borrower_id.is_(None)
            if borrower_id is None
            else Communication.borrower_id == borrower_id
        )
        statement = select(Communication).where(who, Communication.channel == 'email')
        if text is not None:
            statement = statement.where(Communication.body == text)
        return list(session.scalars(statement.order_by(Communication.id)))


def requests_of(sessions, borrower_id: int) -> list[Request]:
    with sessions() as session:
        return list(
            session.scalars(select(Request).where(Request.borrower_id == borrower_id).order_by(Request.id))
        )


def lines_of(sessions, request_id: int) -> list[RequestEvent]:
    with sessions() as session:
        return list(
            session.scalars(
                select(RequestEvent).where(RequestEvent.request_id == request_id).order_by(RequestEvent.id)
            )
        )


def told(bus: RecordingBus, kind: type) -> list[Any]:
    return [n for body in bus.ui for n in from_wire(body) if isinstance(n, kind)]


def claimed(sessions, message_id: str) -> bool:
    with sessions() as session:
        return (
            session.scalar(select(InboundEvent.id).where(InboundEvent.key == email_key(message_id)))
            is not None
        )


# --- through the router (what the AMQP consumer calls) ----------------------------------------------
def test_a_known_senders_letter_opens_a_request_and_the_next_joins_it(inbound, bus, sessions) -> None:
    mailbox = address()
    borrower = with_email(sessions, mailbox, last='Письмов')
    first = letter(mailbox.upper(), subject='Реквизиты для оплаты', text='Пришлите реквизиты, пожалуйста')
    assert deliver(inbound, first) == [None]

    (stored,) = letters_of(sessions, borrower.id)
    assert (stored.direction, stored.subject, stored.body) == ('in', 'Реквизиты для оплаты', first['text'])
    assert (stored.started_at, stored.collection, stored.operator_id, stored.comment) == (
        TEST_NOW,
        False,
        None,
        None,
    )
    (request,) = requests_of(sessions, borrower.id)
    assert (request.channel, request.origin, request.status) == ('email', 'contact', 'new')
    assert (request.subject, request.text) == ('Реквизиты для оплаты', first['text'])
    assert [(line.kind, line.communication_id) for line in lines_of(sessions, request.id)] == [
        (RequestEventKind.OPENED, stored.id)
    ]
    with sessions() as session:
        assert session.get(Borrower, borrower.id).last_contact_at == TEST_NOW
        # the borrower wrote first: not a contact the 230-FZ limits count
        assert counted_messages(session, [borrower.id], TEST_NOW - timedelta(days=32)) == {borrower.id: []}
    assert told(bus, HistoryChanged) == [HistoryChanged(borrower.id)]
    (opened,) = told(bus, RequestsChanged)
    assert opened.borrower_ids == (borrower.id,)

    second = letter(mailbox.lower(), subject='', text='И ещё вопрос', at='2026-11-26T12:05:00+03:00')
    assert deliver(inbound, second) == [None]
    assert [r.id for r in requests_of(sessions, borrower.id)] == [request.id]  # joined, not a second one
    later = letters_of(sessions, borrower.id)[-1]
    assert (later.subject, later.body) == (None, 'И ещё вопрос')
    assert [(line.kind, line.communication_id, line.text) for line in lines_of(sessions, request.id)][1:] == [
        (RequestEventKind.CONTACT, later.id, 'И ещё вопрос')
    ]
    assert told(bus, HistoryChanged) == [HistoryChanged(borrower.id)] * 2


def test_a_letter_without_a_subject_opens_a_request_named_for_the_channel(inbound, sessions) -> None:
    mailbox = address()
    borrower = with_email(sessions, mailbox)
    assert deliver(inbound, {k: v for k, v in letter(mailbox).items() if k != 'subject'}) == [None]
    (request,) = requests_of(sessions, borrower.id)
    assert request.subject == 'Входящее письмо'


def test_a_repeated_message_id_has_no_second_effect(inbound, bus, sessions) -> None:
    mailbox = address()
    borrower = with_email(sessions, mailbox)
    body = letter(mailbox)
    # the same letter twice in one batch, then again later with other fields: one effect
    assert deliver(inbound, body, body) == [None, None]
    assert deliver(inbound, body | {'text': 'Другой текст', 'from': mailbox.lower()}) == [None]
    assert [m.body for m in letters_of(sessions, borrower.id)] == [body['text']]
    (request,) = requests_of(sessions, borrower.id)
    assert len(lines_of(sessions, request.id)) == 1
    assert told(bus, HistoryChanged) == [HistoryChanged(borrower.id)]


def test_a_run_of_letters_from_several_borrowers_is_recorded_at_once(inbound, sessions) -> None:
    mailboxes = [address() for _ in range(3)]
    borrowers = [with_email(sessions, m) for m in mailboxes]
    bodies = [letter(m, text=f'Письмо {i}-{j}') for j in range(2) for i, m in enumerate(mailboxes)]
    assert deliver(inbound, *bodies) == [None] * 6
    for i, borrower in enumerate(borrowers):
        assert sorted(m.body for m in letters_of(sessions, borrower.id)) == [f'Письмо {i}-0', f'Письмо {i}-1']
        (request,) = requests_of(sessions, borrower.id)
        assert [line.kind for line in lines_of(sessions, request.id)] == [
            RequestEventKind.OPENED,
            RequestEventKind.CONTACT,
        ]


def test_an_unknown_sender_is_recorded_without_a_borrower_or_a_request(inbound, bus, sessions) -> None:
    text = f'Кто-то незнакомый {unique()}'
    stranger = f'stranger.{unique()}@example.org'
    assert deliver(inbound, letter(stranger, text=text)) == [None]
    (stored,) = letters_of(sessions, None, text)
    assert (stored.direction, stored.subject, stored.collection) == ('in', 'График платежей', False)
    assert stored.comment == f'Отправитель не найден среди заёмщиков: {stranger}'
    with sessions() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(RequestEvent)
                .where(RequestEvent.communication_id == stored.id)
            )
            == 0
        )
    assert told(bus, HistoryChanged) == [] and told(bus, RequestsChanged) == []


def test_an_address_two_borrowers_share_is_nobodys_unless_one_is_active(inbound, sessions) -> None:
    shared = address()
    one, other = with_email(sessions, shared), with_email(sessions, shared.lower())
    text = f'Общий адрес {unique()}'
    assert deliver(inbound, letter(shared, text=text)) == [None]
    (stored,) = letters_of(sessions, None, text)
    assert stored.comment == f'Адрес есть у нескольких заёмщиков: {shared}'
    assert requests_of(sessions, one.id) == requests_of(sessions, other.id) == []

    kept = address()
    active = with_email(sessions, kept)
    with_email(sessions, kept, archived=True)  # an old record with the same address
    assert deliver(inbound, letter(kept)) == [None]
    assert len(letters_of(sessions, active.id)) == 1 and len(requests_of(sessions, active.id)) == 1


def test_a_long_subject_and_message_id_are_kept(inbound, sessions) -> None:
    mailbox = address()
    borrower = with_email(sessions, mailbox)
    long_id = 'm' * 256  # longer than the idempotency key's column: the key is its hash
    body = letter(mailbox, message_id=long_id, subject='Т' * 500, text='я' * 20_000)
    assert deliver(inbound, body) == [None]
    assert deliver(inbound, body) == [None]
    (stored,) = letters_of(sessions, borrower.id)
    assert stored.subject == 'Т' * 299 + '…' and len(stored.body) == 20_000
    assert claimed(sessions, long_id) and len(email_key(long_id)) <= 200
    (request,) = requests_of(sessions, borrower.id)
    assert request.subject == 'Т' * 200


BAD = {
    'no from': ('from', lambda b: {k: v for k, v in b.items() if k != 'from'}),
    'from is not an address': ('from', lambda b: b | {'from': 'Иван <ivan@example.org>'}),
    'a NUL in the text': ('text', lambda b: b | {'text': 'Здравствуйте\x00'}),
    'a NUL in the subject': ('subject', lambda b: b | {'subject': 'Тема\x00'}),
    'at out of range': ('at', lambda b: b | {'at': '9999-12-31T23:59:59-05:00'}),
    'at before 2000': ('at', lambda b: b | {'at': '1999-12-31T23:59:59Z'}),
    'no message_id': ('message_id', lambda b: b | {'message_id': ''}),
    'message_id too long': ('message_id', lambda b: b | {'message_id': 'x' * 257}),
    'subject too long': ('subject', lambda b: b | {'subject': 'т' * 501}),
    'text too long': ('text', lambda b: b | {'text': 'т' * 20_001}),
    'no text': ('text', lambda b: {k: v for k, v in b.items() if k != 'text'}),
}


@pytest.mark.parametrize('kind', sorted(BAD))
def test_a_bad_body_is_dead_lettered_with_the_field_and_nothing_written(inbound, bus, sessions, kind) -> None:
    mailbox = address()
    borrower = with_email(sessions, mailbox)
    field, spoil = BAD[kind]
    good = letter(mailbox, text='Хорошее письмо')
    bad = spoil(letter(mailbox, text='Плохое письмо'))
    reasons = deliver(inbound, bad, good)  # the queue goes on past it
    assert reasons[1] is None
    assert reasons[0] is not None and reasons[0].startswith(f'{field}:'), reasons[0]
    assert [m.body for m in letters_of(sessions, borrower.id)] == ['Хорошее письмо']
    assert not claimed(sessions, bad.get('message_id') or '-')


def test_a_body_that_is_not_json_is_dead_lettered(inbound) -> None:
    (reason,) = deliver(inbound, b'{"from": ')
    assert reason is not None and reason.startswith('body is not UTF-8 JSON')


def test_the_card_shows_an_inbound_letter_escaped(system, inbound, sessions, operator) -> None:
    mailbox = address()
    borrower = with_email(sessions, mailbox)
    hostile = '<script>alert(1)</script>"\'&'
    assert deliver(inbound, letter(mailbox, subject=f'Тема {hostile}', text=f'Текст {hostile}')) == [None]
    card = system.services.borrowers.card(operator, borrower.id)
    (item,) = [c for c in card.communications if c.channel == 'email']
    assert (item.direction, item.subject) == ('in', f'Тема {hostile}')
    markup = card_markup.history(card.communications, card.communications_total)
    assert 'Входящее письмо' in markup and '<script>' not in markup
    assert 'Тема: Тема &lt;script&gt;' in markup and 'Текст &lt;script&gt;alert(1)&lt;/script&gt;' in markup


# --- through the HTTP API -------------------------------------------------------------------------
@pytest.fixture
def api(engine, database_url, clock) -> TestClient:
    system = bootstrap.build(
        Settings(database_url=database_url, api_token=TOKEN), engine=engine, bus=RecordingBus(), clock=clock
    )
    app = FastAPI()
    routes.install(app, system.services)
    return TestClient(app, raise_server_exceptions=False)


def post(api: TestClient, body: dict[str, Any]) -> Any:
    return api.post(
        '/api/v1/events', json={'type': 'email.received'} | body, headers={'Authorization': f'Bearer {TOKEN}'}
    )


def test_over_the_api_a_letter_is_202_once_and_a_repeat_is_a_duplicate(api, sessions) -> None:
    mailbox = address()
    borrower = with_email(sessions, mailbox)
    body = letter(mailbox.swapcase())
    first = post(api, body)
    assert first.status_code == 202 and first.json() == {'status': 'accepted', 'type': 'email.received'}
    again = post(api, body)
    assert again.status_code == 202 and again.json()['status'] == 'duplicate'
    assert len(letters_of(sessions, borrower.id)) == 1
    (request,) = requests_of(sessions, borrower.id)
    assert request.channel == 'email'

    stranger = f'nobody.{unique()}@example.org'
    text = f'Через API от незнакомца {unique()}'
    assert post(api, letter(stranger, text=text)).status_code == 202
    assert len(letters_of(sessions, None, text)) == 1


@pytest.mark.parametrize('kind', sorted(BAD))
def test_over_the_api_a_bad_body_is_a_field_named_422_and_nothing_written(api, sessions, kind) -> None:
    mailbox = address()
    borrower = with_email(sessions, mailbox)
    field, spoil = BAD[kind]
    body = spoil(letter(mailbox))
    response = post(api, body)
    if kind == 'text too long':  # 20,001 Cyrillic letters as JSON \u escapes are over the API's 64 KiB
        assert response.status_code in (413, 422), response.text
    else:
        assert response.status_code == 422, response.text
        assert response.json()['detail'][0]['loc'] == ['body', field]
    assert letters_of(sessions, borrower.id) == []
    assert requests_of(sessions, borrower.id) == []


# --- over a real RabbitMQ ----------------------------------------------------------------------------
@pytest.fixture
def rabbit(engine, database_url, clock, amqp_url, names) -> Iterator[tuple[System, RabbitBus]]:
    bus = RabbitBus(amqp_url, names=names, reconnect_max_s=1.0, retry_delay_s=0.1)
    system = bootstrap.build(Settings(database_url=database_url), engine=engine, bus=bus, clock=clock)
    system.start(lambda _body: None)
    yield system, bus
    bus.purge_events()
    system.stop(keep_engine=True)


def wait_for(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.05)


def test_letters_over_rabbitmq_once_each_and_a_bad_one_dead_lettered(rabbit, sessions) -> None:
    _system, bus = rabbit
    mailbox = address()
    borrower = with_email(sessions, mailbox)
    first = letter(mailbox.upper(), text='Через брокер')
    later = letter(mailbox, text='Ещё одно через брокер', at='2026-11-26T12:01:00+03:00')
    bus.publish_raw_event('email.received', json.dumps(letter(mailbox) | {'from': 'not-an-address'}).encode())
    for body in (first, first, later):  # the mail system handed the first over twice: one effect
        bus.publish_event('email.received', body)
    wait_for(lambda: len(letters_of(sessions, borrower.id)) == 2)
    assert [m.body for m in letters_of(sessions, borrower.id)] == ['Через брокер', 'Ещё одно через брокер']
    (request,) = requests_of(sessions, borrower.id)
    assert (request.channel, len(lines_of(sessions, request.id))) == ('email', 2)

    letters: list[tuple[bytes, dict[str, Any]]] = []
    wait_for(lambda: bool(letters.extend(bus.dead_letters()) or letters))
    ((body, headers),) = letters
    assert json.loads(body)['from'] == 'not-an-address'
    assert headers['x-dead-reason'].startswith('from:')
