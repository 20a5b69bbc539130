"""The outbox dispatcher with real peers: the HTTP SMS gateway and SMTP on loopback, the real database.

A gateway answering 503 for a while, one answering 400, one that hangs; a dispatcher killed between the
send and its commit; the token bucket; secret texts masked; 230-FZ again at send time; e-mail with a
Cyrillic subject. (Delivery reports: ``test_outbox_reports.py``; two processes on PostgreSQL:
``test_outbox_postgres.py``.)
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, update

from crm import bootstrap
from crm.config import Settings
from crm.db.engine import make_engine, make_sessions
from crm.db.models import Borrower, Communication, InboundEvent, OutboxAttempt, OutboxMessage, SendRate
from crm.domain.contact_rules import MESSAGE_LIMITS
from crm.domain.messages import PASSWORD_MASK, MessageChannel, Purpose
from crm.integrations.bus import RecordingBus
from crm.integrations.mail import RecordingMailer
from crm.integrations.mail_smtp import SmtpMailer
from crm.integrations.sms import RecordingSms, SmsGateway
from crm.integrations.sms_http import HttpSmsGateway
from crm.services import outbox
from crm.services.compliance import ComplianceService
from crm.services.notifier import Notifier
from crm.services.outbox_dispatcher import DispatchPolicy, OutboxDispatcher
from tests.factories import make_borrower, unique_phone
from tests.loopback import SmsGatewayServer, SmtpServer

TOKEN = 'outbox-test-token'
TTL = timedelta(hours=72)
SECRET_TEXT = 'Новый пароль ЛК: Zx7pQ2mK'


def set_outbox_aside(engine) -> None:
    """What other tests left waiting would be due too: set aside (cancelled). The token buckets start
    full, and the ids and reports of earlier loopback gateways (each numbers its messages gw-1, gw-2, …
    afresh) are forgotten."""
    with engine.begin() as connection:
        connection.execute(delete(InboundEvent).where(InboundEvent.key.like('sms.status:gw-%')))
        connection.execute(
            update(OutboxMessage)
            .where(OutboxMessage.gateway_id.like('gw-%'))
            .values(gateway_id='earlier-' + OutboxMessage.gateway_id)
        )
        connection.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status.in_(['queued', 'sending']))
            .values(status='cancelled')
        )
        connection.execute(delete(SendRate))


@pytest.fixture(autouse=True)
def only_this_tests_messages(engine) -> Iterator[None]:
    set_outbox_aside(engine)
    yield
    set_outbox_aside(engine)  # nothing of this test's left due, and the buckets full, for the next


@pytest.fixture
def own(engine, clock):
    return make_sessions(engine, clock)


@pytest.fixture
def gateway() -> Iterator[SmsGatewayServer]:
    with SmsGatewayServer(TOKEN, hang_seconds=2) as server:
        yield server


@pytest.fixture
def http_sms(gateway) -> Iterator[HttpSmsGateway]:
    client = HttpSmsGateway(gateway.url, TOKEN, timeout=0.3)
    yield client
    client.close()


def dispatcher(own, clock, sms: SmsGateway, bus=None, mail=None, **policy) -> OutboxDispatcher:
    return OutboxDispatcher(
        own,
        sms=sms,
        mail=mail or RecordingMailer(),
        compliance=ComplianceService(own, message_limits=MESSAGE_LIMITS, clock=clock),
        notifier=Notifier(bus or RecordingBus()),
        policy=DispatchPolicy(sms_sender='DEMOZAIM', mail_from='Демо Займ <noreply@demozaim.ru>', **policy),
        clock=clock,
        rng=random.Random(7),
    )


def queue(own, clock, n: int = 1, **fields) -> list[int]:
    fields.setdefault('channel', MessageChannel.SMS)
    fields.setdefault('purpose', Purpose.SERVICE)
    fields.setdefault('body', 'ООО МКК «Демо Займ»: напоминаем о платеже. 8 800 555-35-35')
    to = fields.pop('to', None)
    ttl = fields.pop('ttl', TTL)
    messages = [outbox.NewMessage(to=to or unique_phone(), **fields) for _ in range(n)]
    with own.begin() as session:
        return outbox.queue_many(session, messages, now=clock(), ttl=ttl)


def rows(own, ids: list[int]) -> list[OutboxMessage]:
    with own() as session:
        return list(session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids)).order_by('id')))


def outcomes(own, message_id: int) -> list[str]:
    with own() as session:
        return list(
            session.scalars(
                select(OutboxAttempt.outcome).where(OutboxAttempt.message_id == message_id).order_by('id')
            )
        )


def communication(own, message_id: int) -> Communication:
    with own() as session:
        found = session.scalars(
            select(Communication)
            .join(OutboxMessage, OutboxMessage.communication_id == Communication.id)
            .where(OutboxMessage.id == message_id)
        ).one()
        return found


def test_messages_go_once_each_and_are_recorded_sent(own, clock, gateway, http_sms, bus) -> None:
    borrower = make_borrower(own, phones=(unique_phone(),))
    ids = queue(own, clock, 3, borrower_id=borrower.id)
    clock.advance(seconds=5)
    assert dispatcher(own, clock, http_sms, bus).run_once() == 3
    assert len(gateway.accepted) == 3 and gateway.requests == 3
    by_key = {sms.id: sms for sms in gateway.accepted}
    for row in rows(own, ids):
        assert row.status == 'sent' and row.attempts == 1 and row.sent_at == clock()
        assert row.gateway_id == by_key[row.key].gateway_id and by_key[row.key].to == row.to_address
        assert by_key[row.key].sender == 'DEMOZAIM' and by_key[row.key].idempotency_key == row.key
        assert outcomes(own, row.id) == ['accepted']
        assert communication(own, row.id).delivery_status == 'sent'
        assert communication(own, row.id).started_at == clock()  # the moment it really went
    assert bus.ui == [{'kind': 'history', 'borrower_id': borrower.id}]  # one per borrower and commit
    assert dispatcher(own, clock, http_sms).run_once() == 0


def test_a_gateway_answering_503_for_a_while_gets_each_message_once(own, clock, gateway, http_sms) -> None:
    ids = queue(own, clock, 4)
    gateway.mode = 'fail503'
    worker = dispatcher(own, clock, http_sms)
    assert worker.run_once() == 4
    waiting = rows(own, ids)
    assert {row.status for row in waiting} == {'queued'}
    assert all('HTTP 503' in (row.reason or '') for row in waiting)
    assert all(clock() <= row.not_before <= clock() + timedelta(seconds=2) for row in waiting)  # base 2 s
    clock.advance(seconds=2)
    assert worker.run_once() == 4  # the second try waits up to 4 s: full jitter, doubled
    assert all(row.not_before <= clock() + timedelta(seconds=4) for row in rows(own, ids))
    gateway.mode = 'ok'
    clock.advance(seconds=4)
    assert worker.run_once() == 4
    assert [row.status for row in rows(own, ids)] == ['sent'] * 4
    assert all(row.reason is None and row.attempts == 3 for row in rows(own, ids))
    assert outcomes(own, ids[0]) == ['retry', 'retry', 'accepted']
    assert len(gateway.accepted) == 4 and gateway.requests == 12


def test_out_of_attempts_a_message_fails_with_the_last_reason(own, clock, gateway, http_sms) -> None:
    (message_id,) = queue(own, clock, secret=True, body=SECRET_TEXT, purpose=Purpose.PASSWORD)
    gateway.mode = 'fail503'
    worker = dispatcher(own, clock, http_sms, max_attempts=2)
    worker.run_once()
    clock.advance(seconds=2)
    worker.run_once()
    (row,) = rows(own, [message_id])
    assert row.status == 'failed' and row.finished_at == clock()
    assert row.reason is not None and row.reason.startswith('Не отправлено за 2 попыток: шлюз SMS')
    assert row.body == f'Новый пароль ЛК: {PASSWORD_MASK}'  # the clear text ends with the message
    assert communication(own, message_id).delivery_status == 'failed'


def test_a_gateway_answering_400_fails_the_message_with_its_reason(own, clock, gateway, http_sms) -> None:
    plain, secret = (
        queue(own, clock),
        queue(own, clock, secret=True, body=SECRET_TEXT, purpose=Purpose.PASSWORD),
    )
    gateway.mode = 'reject400'
    gateway.reject_reason = 'number is blacklisted'
    assert dispatcher(own, clock, http_sms).run_once() == 2
    for row in rows(own, plain + secret):
        assert row.status == 'failed' and row.attempts == 1 and row.finished_at == clock()
        assert row.reason == 'шлюз SMS отклонил сообщение: HTTP 400 — number is blacklisted'
        assert outcomes(own, row.id) == ['failed']
    assert rows(own, secret)[0].body == f'Новый пароль ЛК: {PASSWORD_MASK}'
    assert rows(own, plain)[0].body.startswith('ООО МКК')
    clock.advance(hours=1)
    assert dispatcher(own, clock, http_sms).run_once() == 0  # never tried again
    assert gateway.accepted == []


def test_a_gateway_that_hangs_times_out_and_the_message_goes_later(own, clock, gateway, http_sms) -> None:
    ids = queue(own, clock, 2)
    gateway.mode = 'hang'
    worker = dispatcher(own, clock, http_sms)
    worker.run_once()
    assert all('не ответил за 0.3 с' in (row.reason or '') for row in rows(own, ids))
    assert {row.status for row in rows(own, ids)} == {'queued'}
    gateway.mode = 'ok'
    clock.advance(seconds=2)
    assert worker.run_once() == 2
    assert {row.status for row in rows(own, ids)} == {'sent'}
    assert len(gateway.accepted) == 2


def test_a_dispatcher_killed_between_send_and_commit_makes_no_second_sms(
    own, clock, gateway, http_sms, monkeypatch
) -> None:
    ids = queue(own, clock, 5)
    doomed = dispatcher(own, clock, http_sms)

    def killed(*args: object) -> None:
        raise SystemExit('the process died before its commit')

    monkeypatch.setattr(doomed, '_record', killed)
    with pytest.raises(SystemExit):
        doomed.run_once()
    assert len(gateway.accepted) == 5  # they went, but nothing says so
    assert {row.status for row in rows(own, ids)} == {'sending'}
    heir = dispatcher(own, clock, http_sms)
    assert heir.run_once() == 0  # leased: not due before the lease ends
    clock.advance(seconds=61)
    assert heir.run_once() == 5  # due again, sent again with the same keys …
    assert gateway.requests == 10 and len(gateway.accepted) == 5  # … which the gateway counts once
    assert all(row.status == 'sent' and row.attempts == 2 for row in rows(own, ids))
    assert all(gateway.count(row.key) == 1 for row in rows(own, ids))


def test_the_token_bucket_holds_the_rate(own, clock, http_sms) -> None:
    """120 messages at 20 a second (a burst of one second's worth) take 5 s of the injected clock."""
    ids = queue(own, clock, 120)
    workers = [dispatcher(own, clock, http_sms, rates={'sms': 20.0}) for _ in range(2)]
    start, sent, step = clock(), 0, 0
    while sent < 120:
        sent += workers[step % 2].run_once()  # two dispatchers take turns on one bucket
        elapsed = (clock() - start).total_seconds()
        assert sent <= 20 + 20 * elapsed + 1e-6  # never more than the burst and the rate
        clock.advance(seconds=0.1)
        step += 1
        assert step < 200
    assert 5.0 <= elapsed <= 5.2
    assert {row.status for row in rows(own, ids)} == {'sent'}


def test_a_collection_message_past_22_waits_for_08_in_the_borrowers_zone(own, clock, http_sms) -> None:
    borrower = make_borrower(own, phones=(unique_phone(),), days_past_due=12)  # Europe/Moscow
    clock.now = datetime(2026, 11, 26, 18, 59, tzinfo=UTC)  # 21:59 in Moscow: allowed, so queued
    (message_id,) = queue(own, clock, borrower_id=borrower.id, purpose=Purpose.COLLECTION)
    clock.now = datetime(2026, 11, 26, 19, 1, tzinfo=UTC)  # 22:01 when the dispatcher comes to it
    worker = dispatcher(own, clock, http_sms)
    assert worker.run_once() == 1
    (row,) = rows(own, [message_id])
    eight = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)  # Friday 08:00 in Moscow
    assert row.status == 'queued' and row.not_before == eight and row.attempts == 0
    assert row.rule == 'quiet_hours' and row.reason is not None and 'Тихие часы' in row.reason
    assert outcomes(own, message_id) == ['held']
    assert communication(own, message_id).started_at == eight  # the ledger counts it when it goes
    clock.now = eight - timedelta(minutes=1)
    assert worker.run_once() == 0
    clock.now = eight
    assert worker.run_once() == 1
    assert rows(own, [message_id])[0].status == 'sent'


def test_the_law_at_send_time_refuses_a_bankrupt_and_lets_two_of_three_go(own, clock, http_sms) -> None:
    borrower = make_borrower(own, phones=(unique_phone(),), days_past_due=40)
    flagged = make_borrower(own, phones=(unique_phone(),), days_past_due=40)
    three = queue(own, clock, 3, borrower_id=borrower.id, purpose=Purpose.COLLECTION)
    (refused,) = queue(own, clock, borrower_id=flagged.id, purpose=Purpose.COLLECTION)
    with own.begin() as session:
        session.execute(update(Borrower).where(Borrower.id == flagged.id).values(bankrupt=True))
    assert dispatcher(own, clock, http_sms).run_once() == 4
    first, second, third = rows(own, three)
    assert first.status == second.status == 'sent'  # queued together past the limit: the first two go
    assert third.status == 'queued' and third.rule == 'limit_day'
    assert third.not_before == datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
    (row,) = rows(own, [refused])
    assert row.status == 'refused' and row.rule == 'bankrupt' and row.finished_at == clock()
    assert communication(own, refused).delivery_status == 'refused'  # not counted by the ledger


def test_a_message_not_sent_in_time_expires(own, clock, http_sms) -> None:
    (message_id,) = queue(
        own, clock, secret=True, body=SECRET_TEXT, purpose=Purpose.PASSWORD, ttl=timedelta(hours=1)
    )
    clock.advance(hours=2)
    assert dispatcher(own, clock, http_sms).run_once() == 1
    (row,) = rows(own, [message_id])
    assert row.status == 'expired' and row.reason == 'Истёк срок отправки'
    assert row.body == f'Новый пароль ЛК: {PASSWORD_MASK}'
    assert outcomes(own, message_id) == ['expired']


def test_the_secret_is_in_the_database_only_until_the_gateway_took_it(own, clock, gateway, http_sms) -> None:
    (message_id,) = queue(own, clock, secret=True, body=SECRET_TEXT, purpose=Purpose.PASSWORD)
    assert rows(own, [message_id])[0].body == SECRET_TEXT  # held for the gateway …
    dispatcher(own, clock, http_sms).run_once()
    assert gateway.accepted[0].text == SECRET_TEXT  # … which got it whole …
    with own() as session:  # … and nothing in the database holds it any more
        bodies = session.scalars(select(OutboxMessage.body).where(OutboxMessage.id == message_id)).all()
        details = session.scalars(select(OutboxAttempt.detail).where(OutboxAttempt.message_id == message_id))
        assert bodies == [f'Новый пароль ЛК: {PASSWORD_MASK}'] and not any(details)
    assert communication(own, message_id).body == f'Новый пароль ЛК: {PASSWORD_MASK}'


def test_an_email_with_a_cyrillic_subject_reaches_the_smtp_server(own, clock, http_sms) -> None:
    subject = 'Напоминание о платеже — «Демо Займ»'
    with SmtpServer() as server:
        mailer = SmtpMailer(server.url(), 'Демо Займ <noreply@demozaim.ru>', clock=clock)
        (message_id,) = queue(
            own,
            clock,
            channel=MessageChannel.EMAIL,
            to='petrov.ivan@example.ru',
            subject=subject,
            body='Здравствуйте!\nПлатёж 5 000,00 ₽ <до 30.11>.',
        )
        assert dispatcher(own, clock, http_sms, mail=mailer).run_once() == 1
        (received,) = server.received()
    assert received.rcpt_tos == ['petrov.ivan@example.ru'] and received.message['Subject'] == subject
    text = received.message.get_body(('plain',))
    html = received.message.get_body(('html',))
    assert text is not None and 'Платёж 5 000,00 ₽ <до 30.11>.' in text.get_content()
    assert html is not None and '&lt;до 30.11&gt;.' in html.get_content()  # escaped, lines kept
    (row,) = rows(own, [message_id])
    assert row.status == 'sent' and row.gateway_id == received.message['Message-ID']
    assert row.key in row.gateway_id


def test_the_app_process_sends_between_start_and_stop(database_url, clock) -> None:
    """``System.start`` runs the dispatcher's threads (CRM_OUTBOX_DISPATCHER, on by default); ``stop``
    ends them before the engine and the gateways close."""
    engine = make_engine(database_url)
    sms = RecordingSms()
    system = bootstrap.build(
        Settings(database_url=database_url), engine=engine, bus=RecordingBus(), clock=clock, sms=sms
    )
    ids = queue(make_sessions(engine, clock), clock, 3)
    before = set(threading.enumerate())
    system.start(lambda body: None)
    try:
        deadline = time.monotonic() + 10
        while len(sms.sent) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        system.stop()
    assert {row.status for row in rows(make_sessions(engine, clock), ids)} == {'sent'}
    started = set(threading.enumerate()) - before  # other tests' dispatchers may have idle pools
    assert not [thread for thread in started if thread.name.startswith('crm-outbox')]
    quiet = bootstrap.build(Settings(database_url=database_url, outbox_dispatcher=False), engine=engine)
    assert quiet.dispatcher is not None and quiet.dispatcher not in quiet.workers
    quiet.stop()


def test_nothing_logged_holds_a_text_a_phone_or_an_address(own, clock, gateway, http_sms, caplog) -> None:
    phones = [unique_phone() for _ in range(3)]
    ids = queue(own, clock, secret=True, body=SECRET_TEXT, purpose=Purpose.PASSWORD, to=phones[0])
    ids += queue(own, clock, to=phones[1], body='Текст, который шлюз сначала не примет')
    ids += queue(own, clock, channel=MessageChannel.EMAIL, to='sidorova.anna@example.ru', body='Письмо')
    with caplog.at_level(logging.DEBUG):
        gateway.fail_next(1)  # one of the SMS waits for a second try
        worker = dispatcher(own, clock, http_sms)
        worker.run_once()
        clock.advance(seconds=5)
        worker.run_once()
    logged = '\n'.join(record.getMessage() for record in caplog.records)
    assert {row.status for row in rows(own, ids)} == {'sent'}
    assert '1 to retry' in logged  # it did log, by counts and ids
    for private in [*phones, SECRET_TEXT, 'Zx7pQ2mK', 'сначала не примет', 'sidorova.anna', 'Письмо']:
        assert private not in logged
