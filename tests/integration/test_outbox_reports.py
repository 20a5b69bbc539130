"""Delivery reports (``sms.status``) through the inbound router, as AMQP and the HTTP API hand them in:
by the gateway's id or our key, repeated, contradicting, before the dispatcher's commit, unknown; and
what «Исходящие сообщения» makes of the outbox (the list, its filters, a resend)."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from crm import bootstrap
from crm.api import routes
from crm.bootstrap import System
from crm.config import Settings
from crm.db.models import Communication, InboundEvent, OutboxMessage
from crm.domain import Role
from crm.domain.errors import AccessDenied, NotFound, ServiceError
from crm.domain.messages import MessageChannel, Purpose
from crm.integrations.bus import Delivery, RecordingBus
from crm.integrations.sms import SmsMessage
from crm.integrations.sms_http import HttpSmsGateway
from crm.services import outbox
from crm.services.auth import to_actor
from crm.services.inbound import InboundRouter
from crm.services.outbox_views import OutboxFilters, mask_recipient
from tests.factories import make_borrower, make_user, unique, unique_phone
from tests.integration.test_outbox import set_outbox_aside
from tests.loopback import SmsGatewayServer

TOKEN = 'outbox-reports-token'
API_TOKEN = 'outbox-reports-api-token'
AT = '2026-11-26T12:00:30+03:00'


@pytest.fixture(autouse=True)
def only_this_tests_messages(engine) -> Iterator[None]:
    set_outbox_aside(engine)
    yield
    set_outbox_aside(engine)


@pytest.fixture
def gateway() -> Iterator[SmsGatewayServer]:
    with SmsGatewayServer(TOKEN) as server:
        yield server


@pytest.fixture
def system(engine, database_url, bus, clock, gateway) -> Iterator[System]:
    sms = HttpSmsGateway(gateway.url, TOKEN, timeout=2)
    built = bootstrap.build(
        Settings(database_url=database_url, api_token=API_TOKEN),
        engine=engine,
        bus=bus,
        clock=clock,
        sms=sms,
        dispatcher=False,
    )
    yield built
    assert built.dispatcher is not None
    built.dispatcher.stop()
    sms.close()


def report(inbound: InboundRouter, message_id: str, status: str, at: str = AT) -> str | None:
    """As the AMQP consumer hands it in."""
    body = json.dumps({'message_id': message_id, 'status': status, 'at': at}).encode()
    return inbound.handle_deliveries([Delivery('sms.status', body)])[0]


def queue_one(sessions, clock, borrower_id: int | None = None) -> int:
    message = outbox.NewMessage(
        MessageChannel.SMS, Purpose.SERVICE, unique_phone(), 'Текст', borrower_id=borrower_id
    )
    with sessions.begin() as session:
        return outbox.queue(session, message, now=clock(), ttl=timedelta(hours=1))


def state(sessions, message_id: int) -> tuple[str, str | None, str | None]:
    """The row's status and reason, and its communication's delivery status."""
    with sessions() as session:
        row = session.get(OutboxMessage, message_id)
        assert row is not None
        communication = session.get(Communication, row.communication_id)
        assert communication is not None
        return row.status, row.reason, communication.delivery_status


def send(system: System) -> None:
    assert system.dispatcher is not None
    while system.dispatcher.run_once():
        pass


def test_delivered_by_the_gateways_id_once_and_never_undone(system, inbound, sessions, clock, bus) -> None:
    borrower = make_borrower(sessions, phones=(unique_phone(),))
    message_id = queue_one(sessions, clock, borrower.id)
    send(system)
    with sessions() as session:
        row = session.get(OutboxMessage, message_id)
        assert row is not None and row.gateway_id is not None
        gateway_id = row.gateway_id
    bus.ui.clear()
    assert report(inbound, gateway_id, 'delivered') is None
    assert state(sessions, message_id) == ('delivered', None, 'delivered')
    with sessions() as session:
        row = session.get(OutboxMessage, message_id)
        assert row is not None and row.finished_at == datetime(2026, 11, 26, 9, 0, 30, tzinfo=UTC)
    assert bus.ui == [{'kind': 'history', 'borrower_id': borrower.id}]
    assert report(inbound, gateway_id, 'delivered') is None  # a repeat: no second effect …
    assert report(inbound, gateway_id, 'failed', '2026-11-26T12:05:00+03:00') is None  # … nor a late one
    assert state(sessions, message_id) == ('delivered', None, 'delivered')
    assert bus.ui == [{'kind': 'history', 'borrower_id': borrower.id}]


def test_undelivered_by_our_key_then_delivered_after_all(system, inbound, sessions, clock) -> None:
    message_id = queue_one(sessions, clock)
    send(system)
    with sessions() as session:
        row = session.get(OutboxMessage, message_id)
        assert row is not None
        key = row.key
    assert inbound.accept('sms.status', {'message_id': key, 'status': 'failed', 'at': AT})  # the HTTP API
    assert state(sessions, message_id) == ('failed', 'Оператор связи сообщил о недоставке', 'failed')
    assert not inbound.accept('sms.status', {'message_id': key, 'status': 'failed', 'at': AT})  # a repeat
    assert inbound.accept('sms.status', {'message_id': key, 'status': 'delivered', 'at': AT})
    assert state(sessions, message_id) == ('delivered', None, 'delivered')  # the borrower got it: it counts


class ReportingFirst:
    """A gateway whose report comes back before the dispatcher has recorded the send."""

    def __init__(self, inner: HttpSmsGateway, inbound: InboundRouter, by_key: bool) -> None:
        self.inner, self.inbound, self.by_key = inner, inbound, by_key

    def send(self, message: SmsMessage) -> str:
        gateway_id = self.inner.send(message)
        message_id = message.id if self.by_key else gateway_id
        assert self.inbound.accept('sms.status', {'message_id': message_id, 'status': 'delivered', 'at': AT})
        return gateway_id

    def close(self) -> None:
        pass


@pytest.mark.parametrize('by_key', [True, False], ids=['by our key', "by the gateway's id"])
def test_a_report_before_the_dispatchers_commit_is_not_lost(
    engine, database_url, clock, gateway, sessions, by_key: bool
) -> None:
    client = HttpSmsGateway(gateway.url, TOKEN, timeout=2)
    plain = bootstrap.build(
        Settings(database_url=database_url), engine=engine, bus=RecordingBus(), clock=clock
    )
    sms = ReportingFirst(client, plain.services.inbound, by_key)
    system = bootstrap.build(
        Settings(database_url=database_url), engine=engine, bus=RecordingBus(), clock=clock, sms=sms
    )
    message_id = queue_one(sessions, clock)
    try:
        send(system)
    finally:
        assert system.dispatcher is not None and plain.dispatcher is not None
        system.dispatcher.stop()
        plain.dispatcher.stop()
        client.close()
    assert state(sessions, message_id) == ('delivered', None, 'delivered')  # not downgraded to sent
    with sessions() as session:
        row = session.get(OutboxMessage, message_id)
        assert row is not None and row.gateway_id == gateway.accepted[0].gateway_id and row.sent_at
        reported = row.key if by_key else row.gateway_id
        kept = session.scalars(
            select(InboundEvent.status).where(InboundEvent.key == f'sms.status:{reported}:delivered')
        ).all()
    assert kept == ['applied']  # this message's report: applied, not left stored


def test_a_report_for_an_unknown_message_is_kept_and_logged_without_personal_data(
    inbound, sessions, caplog
) -> None:
    message_id = f'gw-unknown-{unique()}'
    with caplog.at_level(logging.INFO, logger='crm.services.outbox'):
        assert report(inbound, message_id, 'delivered') is None
    with sessions() as session:
        kept = session.scalars(select(InboundEvent).where(InboundEvent.key.contains(message_id))).one()
    assert kept.status == 'stored'
    assert any(message_id in record.getMessage() for record in caplog.records)


def test_reports_racing_the_dispatcher_all_land(engine, database_url, clock, sessions) -> None:
    """The gateway reports each message from its own thread the moment it took it; whichever of the
    report and the dispatcher's commit comes first, every message ends delivered."""
    holder: dict[str, Any] = {}

    def on_report(gateway_id: str, status: str) -> None:
        holder['inbound'].accept('sms.status', {'message_id': gateway_id, 'status': status, 'at': AT})

    with SmsGatewayServer(TOKEN, on_report=on_report) as server:
        client = HttpSmsGateway(server.url, TOKEN, timeout=2)
        system = bootstrap.build(
            Settings(database_url=database_url), engine=engine, bus=RecordingBus(), clock=clock, sms=client
        )
        holder['inbound'] = system.services.inbound
        ids = [queue_one(sessions, clock) for _ in range(60)]
        try:
            send(system)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if all(state(sessions, i)[0] == 'delivered' for i in ids):
                    break
                time.sleep(0.05)
        finally:
            assert system.dispatcher is not None
            system.dispatcher.stop()
            client.close()
    assert [state(sessions, i)[0] for i in ids] == ['delivered'] * 60


def test_an_undelivered_message_resent_goes_under_a_new_key(
    system, inbound, sessions, clock, gateway
) -> None:
    """The gateway took it and the operator reported it undelivered: the same key would be taken for
    the same message, so a resend gets a new one (a message that never reached the gateway keeps its)."""
    admin = to_actor(make_user(sessions, role=Role.ADMIN))
    message_id = queue_one(sessions, clock)
    send(system)
    assert report(inbound, gateway.accepted[0].gateway_id, 'failed') is None
    with pytest.raises(ServiceError, match='Повторно отправить можно только'):
        system.services.outbox.resend(admin, queue_one(sessions, clock))  # a queued one: no
    resent = system.services.outbox.resend(admin, message_id)
    assert resent.status == 'queued' and resent.attempts == 0 and resent.reason is None
    assert state(sessions, message_id) == ('queued', None, 'queued')
    send(system)
    assert len(gateway.accepted) == 3  # the first, the other one queued above, and this one again
    again = [sms for sms in gateway.accepted if sms.to == gateway.accepted[0].to]
    assert len(again) == 2 and again[0].id != again[1].id
    assert state(sessions, message_id)[0] == 'sent'
    with pytest.raises(AccessDenied):
        system.services.outbox.resend(to_actor(make_user(sessions, role=Role.SUPERVISOR)), message_id)


def test_the_outbox_list_filters_counts_and_masks(system, sessions, clock, gateway) -> None:
    admin = to_actor(make_user(sessions, role=Role.ADMIN))
    first, second = queue_one(sessions, clock), queue_one(sessions, clock)
    gateway.mode = 'reject400'
    send(system)
    gateway.mode = 'ok'
    third = queue_one(sessions, clock)
    service = system.services.outbox
    page = service.list(admin, OutboxFilters(channel='sms', created_from=date(2026, 11, 26)), per_page=200)
    ours = {row.id: row for row in page.items if row.id in (first, second, third)}
    assert {row.status for row in ours.values()} == {'failed', 'queued'}
    assert page.counts['failed'] >= 2 and page.counts['queued'] >= 1
    assert all(re.fullmatch(r'\+7 999 \*\*\*-\*\*-\d\d', row.recipient) for row in ours.values())
    failed = service.list(admin, OutboxFilters(status='failed'), per_page=200)
    assert {first, second} <= {row.id for row in failed.items}
    assert all(row.status == 'failed' and row.status_label == 'Ошибка' for row in failed.items)
    assert failed.total == failed.counts['failed']
    nothing = service.list(admin, OutboxFilters(created_to=date(2026, 11, 25)))
    assert not {first, second, third} & {row.id for row in nothing.items}
    detail = service.attempts(admin, first)
    assert [a.outcome_label for a in detail.attempts] == ['Отказ']
    assert mask_recipient('ivanov.petr@example.ru') == 'iv***@example.ru'


def test_a_message_whose_communication_was_hidden_is_for_administrators_only(system, sessions, clock) -> None:
    admin = to_actor(make_user(sessions, role=Role.ADMIN))
    supervisor = to_actor(make_user(sessions, role=Role.SUPERVISOR))
    borrower = make_borrower(sessions)
    message_id = queue_one(sessions, clock, borrower.id)
    with sessions() as session:
        communication_id = session.get(OutboxMessage, message_id).communication_id
    system.services.hiding.hide(admin, communication_id, 'Текст о третьих лицах')
    service = system.services.outbox
    assert message_id in {row.id for row in service.list(admin, per_page=200).items}
    assert message_id not in {row.id for row in service.list(supervisor, per_page=200).items}
    with pytest.raises(NotFound):
        service.attempts(supervisor, message_id)
    assert service.attempts(admin, message_id).row.id == message_id


def test_a_report_over_the_http_api_once_and_a_bad_one_refused_by_field(system, sessions, clock) -> None:
    app = FastAPI()
    routes.install(app, system.services)
    client = TestClient(app)
    message_id = queue_one(sessions, clock)
    send(system)
    with sessions() as session:
        row = session.get(OutboxMessage, message_id)
        assert row is not None and row.gateway_id is not None
        body = {'type': 'sms.status', 'message_id': row.gateway_id, 'status': 'delivered', 'at': AT}
    headers = {'Authorization': f'Bearer {API_TOKEN}'}
    first = client.post('/api/v1/events', json=body, headers=headers)
    assert first.status_code == 202 and first.json()['status'] == 'accepted'
    assert client.post('/api/v1/events', json=body, headers=headers).json()['status'] == 'duplicate'
    assert state(sessions, message_id) == ('delivered', None, 'delivered')
    bad = client.post('/api/v1/events', json=body | {'status': 'read'}, headers=headers)
    assert bad.status_code == 422 and bad.json()['detail'][0]['loc'] == ['body', 'status']
