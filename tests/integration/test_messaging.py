"""Messages from the card on the real database: SMS, e-mail and the personal-account password.

The communication and its outbox row commit together or not at all; 230-FZ counts queued collection
messages (injected clock); bad input writes nothing; the password is never in the database in clear
once sent, never in a log line and never in what the service returns.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from crm import bootstrap
from crm.api import routes
from crm.bootstrap import System
from crm.config import Settings
from crm.db.models import AuditEntry, Borrower, BorrowerPhone, Communication, MessageTemplate, OutboxMessage
from crm.db.models import User as UserRow
from crm.domain.errors import NotFound, ServiceError
from crm.domain.messages import PASSWORD_MASK, MessageChannel, OutboxStatus, Purpose
from crm.integrations.account import AccountUnavailable, new_password
from crm.integrations.mail import RecordingMailer
from crm.integrations.sms import RecordingSms
from crm.services import outbox
from crm.services.auth import to_actor
from crm.services.compliance import counted_messages
from crm.services.messaging import BadMessage, MessagingService, RefusedByLaw
from tests.conftest import TEST_NOW, need_service
from tests.factories import make_borrower, unique, unique_phone

TOKEN = 'messaging-api-token'
SIGN = f'{Settings.creditor_name}, {Settings.creditor_phone}'
SMS_BODY = (
    '{{ name }}, просрочка {{ overdue_amount }} по займу № {{ loan_number }}. '
    '{{ creditor_name }}, {{ contact_phone }}'
)


class RecordingAccountSite:
    """The personal-account site for the tests: hands out passwords and remembers them, to look for."""

    def __init__(self) -> None:
        self.passwords: list[str] = []
        self.down = False
        self._lock = threading.Lock()

    def reset_password(self, pin: str) -> str:
        if self.down:
            raise AccountUnavailable('HTTP 503 from the site')
        password = new_password(12)
        with self._lock:
            self.passwords.append(password)
        return password

    def close(self) -> None:
        pass


@pytest.fixture
def site() -> RecordingAccountSite:
    return RecordingAccountSite()


@pytest.fixture
def sms() -> RecordingSms:
    return RecordingSms()


@pytest.fixture
def mail() -> RecordingMailer:
    return RecordingMailer()


@pytest.fixture
def system(engine, database_url, bus, clock, site, sms, mail) -> Iterator[System]:
    built = bootstrap.build(
        Settings(database_url=database_url, api_token=TOKEN),
        engine=engine,
        bus=bus,
        clock=clock,
        sms=sms,
        mail=mail,
        account=site,
    )
    yield built


@pytest.fixture
def messaging(system) -> MessagingService:
    return system.services.messaging


@pytest.fixture
def sms_template(sessions) -> int:
    with sessions.begin() as session:
        template = MessageTemplate(
            channel='sms', kind='overdue', name=f'Тест просрочки {unique()}', body=SMS_BODY, active=True
        )
        session.add(template)
        session.flush()
        return template.id


def debtor(sessions, *, timezone: str = 'Europe/Moscow', email: str | None = None, **kwargs: Any) -> Borrower:
    """A borrower with overdue debt and a mobile phone (and the given e-mail and zone)."""
    kwargs.setdefault('phones', (unique_phone(),))
    kwargs.setdefault('overdue', Decimal('5200'))
    kwargs.setdefault('days_past_due', 12)
    borrower = make_borrower(sessions, **kwargs)
    with sessions.begin() as session:
        row = session.get(Borrower, borrower.id)
        row.timezone, row.email = timezone, email
    return borrower


def written(sessions, borrower_id: int) -> tuple[int, int, int]:
    """(communications, outbox rows, message audit entries) of the borrower."""
    with sessions() as session:
        return (
            session.scalar(select(func.count()).where(Communication.borrower_id == borrower_id)) or 0,
            session.scalar(select(func.count()).where(OutboxMessage.borrower_id == borrower_id)) or 0,
            session.scalar(
                select(func.count()).where(
                    AuditEntry.borrower_id == borrower_id, AuditEntry.action.like('message.%')
                )
            )
            or 0,
        )


def sms_text(extra: str = '') -> str:
    return f'Просрочка по займу. {extra}{SIGN}'


# --- SMS ---------------------------------------------------------------------------------------------


def test_template_sms_is_queued_with_its_communication_in_one_transaction(
    messaging, sessions, operator, sms_template, bus
) -> None:
    borrower = debtor(sessions)
    composed = messaging.compose(operator, borrower.id, sms_template)
    assert composed.text.startswith('Тест Тестович, просрочка 5 200,00 ₽ по займу № T')
    assert composed.parts is not None and composed.parts.encoding == 'UCS-2' and composed.parts.parts == 2
    queued = messaging.send_sms(operator, borrower.id, composed.text, template_id=sms_template)
    assert (queued.channel, queued.purpose, queued.status_label) == (
        MessageChannel.SMS,
        Purpose.COLLECTION,
        'В очереди',
    )
    with sessions() as session:
        row = session.get(OutboxMessage, queued.outbox_id)
        communication = session.get(Communication, row.communication_id)
        entry = session.scalars(
            select(AuditEntry).where(
                AuditEntry.borrower_id == borrower.id, AuditEntry.action == 'message.sms'
            )
        ).one()
        last_contact = session.get(Borrower, borrower.id).last_contact_at
    assert (row.status, row.channel, row.purpose, row.to_address, row.body, row.secret) == (
        'queued',
        'sms',
        'collection',
        borrower.phones[0].phone,
        composed.text,
        False,
    )
    assert row.not_before == TEST_NOW and row.expires_at == TEST_NOW + timedelta(hours=72)
    assert (communication.channel, communication.direction, communication.body) == (
        'sms',
        'out',
        composed.text,
    )
    assert (communication.delivery_status, communication.collection, communication.operator_id) == (
        'queued',
        True,
        operator.id,
    )
    assert entry.user_id == operator.id and f'"outbox_id": {queued.outbox_id}' in entry.details
    assert last_contact == TEST_NOW
    assert bus.ui == [{'kind': 'history', 'borrower_id': borrower.id}]


def test_the_operator_may_edit_the_text_and_pick_another_mobile(messaging, sessions, operator) -> None:
    first, second = unique_phone(), unique_phone()
    borrower = debtor(sessions, phones=(first, second))
    edited = sms_text('Перезвоните, пожалуйста. ')
    queued = messaging.send_sms(operator, borrower.id, edited, phone='+7 ' + second[1:])
    with sessions() as session:
        row = session.get(OutboxMessage, queued.outbox_id)
    assert (row.to_address, row.body) == (second, edited)


def test_an_email_is_queued_with_its_subject(messaging, sessions, operator, bus) -> None:
    borrower = debtor(sessions, email=f'zaemshik{unique()}@example.ru')
    body = f'Здравствуйте!\n\nПросрочка по займу.\n\n{SIGN}'
    queued = messaging.send_email(operator, borrower.id, 'Просрочка по займу', body)
    with sessions() as session:
        row = session.get(OutboxMessage, queued.outbox_id)
        communication = session.get(Communication, row.communication_id)
    assert (row.channel, row.to_address, row.subject, row.body) == (
        'email',
        borrower_email(sessions, borrower.id),
        'Просрочка по займу',
        body,
    )
    assert (communication.channel, communication.subject, communication.phone) == (
        'email',
        'Просрочка по займу',
        None,
    )
    assert bus.ui == [{'kind': 'history', 'borrower_id': borrower.id}]


def borrower_email(sessions, borrower_id: int) -> str | None:
    with sessions() as session:
        return session.get(Borrower, borrower_id).email


# --- 230-FZ ------------------------------------------------------------------------------------------


def test_the_third_collection_message_of_a_day_is_refused_with_the_rule_and_the_next_moment(
    messaging, sessions, operator, clock
) -> None:
    borrower = debtor(sessions, email=f'd{unique()}@example.ru')
    messaging.send_sms(operator, borrower.id, sms_text())
    clock.advance(hours=1)
    messaging.send_email(operator, borrower.id, 'Просрочка', sms_text())  # e-mail counts in the same ledger
    clock.advance(hours=1)
    before = written(sessions, borrower.id)
    with pytest.raises(RefusedByLaw) as refused:
        messaging.send_sms(operator, borrower.id, sms_text())
    assert refused.value.verdict.rule == 'limit_day'
    assert refused.value.verdict.next_allowed_at == datetime(2026, 11, 27, 5, 0, tzinfo=UTC)  # 08:00 MSK
    assert refused.value.message == (
        'Лимит 230-ФЗ: не более 2 сообщений в сутки (уже 2, последнее 26.11 в 13:00 по местному времени)'
        '. Можно будет: 27.11.2026 08:00 МСК'
    )
    assert written(sessions, borrower.id) == before
    assert messaging.options(operator, borrower.id).law == refused.value.message  # the dialog knows first
    clock.now = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
    messaging.send_sms(operator, borrower.id, sms_text())


def test_quiet_hours_are_those_of_the_borrowers_zone(messaging, sessions, operator, clock) -> None:
    borrower = debtor(sessions, timezone='Asia/Vladivostok')  # UTC+10
    clock.now = datetime(2026, 11, 26, 12, 30, tzinfo=UTC)  # 15:30 in Moscow, 22:30 in Vladivostok
    with pytest.raises(RefusedByLaw) as refused:
        messaging.send_sms(operator, borrower.id, sms_text())
    assert refused.value.verdict.rule == 'quiet_hours'
    assert refused.value.message == (
        'Тихие часы 230-ФЗ: у заёмщика 22:30 (рабочий день), отправлять сообщения можно с 08:00 до 22:00 '
        'по местному времени. Можно будет: 27.11.2026 01:00 МСК'
    )
    assert written(sessions, borrower.id) == (0, 0, 0)
    clock.now = datetime(2026, 11, 26, 11, 59, tzinfo=UTC)  # 21:59 there
    messaging.send_sms(operator, borrower.id, sms_text())


def test_a_legal_flag_refuses_an_sms_but_not_the_password(messaging, sessions, operator, site) -> None:
    borrower = debtor(sessions)
    with sessions.begin() as session:
        session.get(Borrower, borrower.id).contact_refused = True
    with pytest.raises(RefusedByLaw) as refused:
        messaging.send_sms(operator, borrower.id, sms_text())
    assert refused.value.verdict.rule == 'contact_refused'
    assert refused.value.message.startswith('Сообщения запрещены: заёмщик отказался от взаимодействия')
    assert written(sessions, borrower.id) == (0, 0, 0)
    queued = messaging.send_password(operator, borrower.id, 'sms')
    assert queued.purpose is Purpose.PASSWORD and len(site.passwords) == 1


def test_a_service_sms_to_a_borrower_without_overdue_debt_is_allowed_and_not_counted(
    messaging, sessions, operator
) -> None:
    borrower = make_borrower(sessions, phones=(unique_phone(),))
    for _ in range(3):
        assert messaging.send_sms(operator, borrower.id, sms_text()).purpose is Purpose.SERVICE
    with sessions() as session:
        assert counted_messages(session, [borrower.id], TEST_NOW - timedelta(days=1)) == {borrower.id: []}
        flags = session.scalars(
            select(Communication.collection).where(Communication.borrower_id == borrower.id)
        )
        assert list(flags) == [False] * 3


@pytest.mark.postgres
def test_two_operators_at_once_do_not_pass_the_limit_together(
    messaging, sessions, operator, is_postgres
) -> None:
    """The borrower's row is locked while the ledger is read: the third of three at once is refused."""
    if not is_postgres:
        need_service('row locks: PostgreSQL only (set CRM_TEST_DATABASE_URL)')
    borrower = debtor(sessions)

    def send(_: int) -> str:
        try:
            messaging.send_sms(operator, borrower.id, sms_text())
        except RefusedByLaw as refused:
            return refused.verdict.rule or ''
        return 'queued'

    with ThreadPoolExecutor(3) as pool:
        outcomes = sorted(pool.map(send, range(3)))
    assert outcomes == ['limit_day', 'queued', 'queued']


# --- bad input: a Russian refusal naming the field, nothing written ------------------------------


@pytest.mark.parametrize(
    ('case', 'field', 'message'),
    [
        ('too_long', 'text', 'Текст SMS не должен быть длиннее 10 частей, сейчас: UCS-2 · '),
        ('empty', 'text', 'Введите текст сообщения'),
        ('nul', 'text', 'Текст содержит недопустимые (управляющие) символы'),
        ('no_creditor', 'text', 'В сообщении должник должен видеть наименование кредитора'),
        ('no_mobile', 'channel', 'У заёмщика нет мобильного телефона'),
        ('not_her_phone', 'phone', 'Этот номер не мобильный телефон заёмщика'),
        ('unknown_template', 'template_id', 'Шаблон не найден или снят с использования'),
        ('email_template', 'template_id', 'Шаблон не для SMS'),
    ],
)
def test_bad_sms_is_refused_and_writes_nothing(
    messaging, sessions, operator, case: str, field: str, message: str
) -> None:
    borrower = debtor(sessions)
    kwargs: dict[str, Any] = {}
    body = sms_text()
    if case == 'too_long':
        body = 'Я' * 700 + SIGN
    elif case == 'empty':
        body = ' \n '
    elif case == 'nul':
        body = sms_text('\x00')
    elif case == 'no_creditor':
        body = 'Просрочка по займу, позвоните нам'
    elif case == 'no_mobile':
        with sessions.begin() as session:
            for phone in session.scalars(
                select(BorrowerPhone).where(BorrowerPhone.borrower_id == borrower.id)
            ):
                phone.kind = 'home'
    elif case == 'not_her_phone':
        kwargs['phone'] = unique_phone()
    elif case == 'unknown_template':
        kwargs['template_id'] = 999_999_999
    elif case == 'email_template':
        with sessions() as session:
            kwargs['template_id'] = session.scalar(
                select(MessageTemplate.id).where(MessageTemplate.channel == 'email').limit(1)
            )
    with pytest.raises(BadMessage) as refused:
        messaging.send_sms(operator, borrower.id, body, **kwargs)
    assert refused.value.field == field
    assert refused.value.message.startswith(message)
    assert written(sessions, borrower.id) == (0, 0, 0)


@pytest.mark.parametrize(
    ('address', 'subject', 'field', 'message'),
    [
        (None, 'Тема', 'channel', 'У заёмщика нет корректного e-mail'),
        ('ivanov.mail.ru', 'Тема', 'channel', 'У заёмщика нет корректного e-mail'),
        ('ivanov@mail', 'Тема', 'channel', 'У заёмщика нет корректного e-mail'),
        ('ivanov@mail.ru', '', 'subject', 'Укажите тему письма'),
        ('ivanov@mail.ru', 'Тема\r\nBcc: all@example.com', 'subject', 'Тема письма — одна строка'),
        ('ivanov@mail.ru', 'Т' * 301, 'subject', 'Тема письма не должна быть длиннее 300 символов'),
    ],
)
def test_bad_email_is_refused_and_writes_nothing(
    messaging, sessions, operator, address: str | None, subject: str, field: str, message: str
) -> None:
    borrower = debtor(sessions, email=address)
    with pytest.raises(BadMessage) as refused:
        messaging.send_email(operator, borrower.id, subject, sms_text())
    assert (refused.value.field, refused.value.message[: len(message)]) == (field, message)
    assert written(sessions, borrower.id) == (0, 0, 0)


def test_an_email_longer_than_allowed_is_refused(messaging, sessions, operator) -> None:
    borrower = debtor(sessions, email='a@b.ru')
    with pytest.raises(BadMessage, match='не должен быть длиннее 10000 символов'):
        messaging.send_email(operator, borrower.id, 'Тема', 'я' * 10_000 + SIGN)


def test_an_unknown_borrower_is_not_found(messaging, operator) -> None:
    with pytest.raises(NotFound, match='Заёмщик не найден'):
        messaging.send_sms(operator, 999_999_999, sms_text())


def test_a_template_the_borrower_lacks_a_value_for_is_refused_not_blank(
    messaging, sessions, operator
) -> None:
    borrower = debtor(sessions)
    with sessions.begin() as session:
        template = MessageTemplate(
            channel='sms',
            kind='promise',
            name=f'Обещание {unique()}',
            body='Ждём {{ promise_amount }} до {{ promise_date }}. {{ creditor_name }}, {{ contact_phone }}',
        )
        session.add(template)
        session.flush()
        template_id = template.id
    with pytest.raises(BadMessage, match='у заёмщика нет значения переменной «promise_amount»') as refused:
        messaging.compose(operator, borrower.id, template_id)
    assert refused.value.field == 'template_id'


# --- the personal-account password ------------------------------------------------------------------


def all_text(sessions, table: str) -> list[str]:
    """Every value of every row of the table, as text."""
    with sessions() as session:
        rows = session.execute(text(f'SELECT * FROM {table}')).all()
    return [str(value) for row in rows for value in row if value is not None]


def test_three_passwords_in_fifteen_minutes_then_a_refusal_until_the_window_passes(
    messaging, sessions, operator, site, clock
) -> None:
    borrower = debtor(sessions, email=f'p{unique()}@example.ru')
    for channel in ('sms', 'email', 'sms'):
        messaging.send_password(operator, borrower.id, channel)
        clock.advance(minutes=4)
    with pytest.raises(ServiceError) as refused:
        messaging.send_password(operator, borrower.id, 'sms')
    assert refused.value.message == (
        'Пароль ЛК можно отправить не более 3 раз за 15 минут. Можно будет: 26.11.2026 12:15 МСК'
    )
    assert len(site.passwords) == 3  # the site was not asked a fourth time
    clock.now = TEST_NOW + timedelta(minutes=15)
    messaging.send_password(operator, borrower.id, 'email')
    assert len(site.passwords) == 4


def test_the_password_is_never_in_clear_in_the_database_the_logs_or_the_answer(
    system, messaging, sessions, operator, site, sms, mail, caplog
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger, every library's records
    borrower = debtor(sessions, email=f'secret{unique()}@example.ru')
    answers = [
        messaging.send_password(operator, borrower.id, 'sms'),
        messaging.send_password(operator, borrower.id, 'email'),
    ]
    first, second = site.passwords
    assert all(repr(answer).count(first) + repr(answer).count(second) == 0 for answer in answers)
    with sessions() as session:
        bodies = session.scalars(
            select(Communication.body).where(Communication.borrower_id == borrower.id)
        ).all()
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.borrower_id == borrower.id)).all()
    assert bodies == [f'Новый пароль ЛК: {PASSWORD_MASK}'] * 2
    assert all(row.secret and row.purpose == 'password' for row in rows)
    assert all(first not in value and second not in value for value in all_text(sessions, 'audit_entries'))
    assert all(first not in value and second not in value for value in all_text(sessions, 'communications'))

    assert system.dispatcher is not None
    try:
        while system.dispatcher.run_once():  # every due row of the test database, ours among them
            pass
    finally:
        system.dispatcher.stop()
    to_phone = [m.text for m in sms.sent if m.to == borrower.phones[0].phone]
    to_mail = [m for m in mail.sent if m.to == borrower_email(sessions, borrower.id)]
    assert len(to_phone) == 1 and first in to_phone[0]  # the borrower got it …
    assert len(to_mail) == 1 and second in to_mail[0].text and second in to_mail[0].html
    with sessions() as session:
        statuses = session.scalars(
            select(OutboxMessage.status).where(OutboxMessage.borrower_id == borrower.id)
        )
        assert set(statuses) == {'sent'}
    for table in ('outbox_messages', 'outbox_attempts', 'communications', 'audit_entries'):
        values = all_text(sessions, table)  # … and no row of the database holds it any longer
        assert all(first not in value and second not in value for value in values), table
    logged = caplog.text + ''.join(str(record.args) for record in caplog.records)
    assert first not in logged and second not in logged


def test_the_site_down_is_a_refusal_and_nothing_is_queued(
    messaging, sessions, operator, site, caplog
) -> None:
    borrower = debtor(sessions)
    site.down = True
    with pytest.raises(ServiceError, match='Сайт личного кабинета не ответил: пароль не сменён'):
        messaging.send_password(operator, borrower.id, 'sms')
    assert written(sessions, borrower.id) == (0, 0, 0)


def test_no_address_for_the_channel_refuses_before_the_site_is_asked(
    messaging, sessions, operator, site
) -> None:
    borrower = debtor(sessions, email=None)
    with pytest.raises(BadMessage, match='нет корректного e-mail'):
        messaging.send_password(operator, borrower.id, 'email')
    with pytest.raises(BadMessage, match='SMS или E-mail'):
        messaging.send_password(operator, borrower.id, 'pigeon')
    assert site.passwords == [] and written(sessions, borrower.id) == (0, 0, 0)


def test_without_a_password_template_the_site_is_not_asked(messaging, sessions, operator, site) -> None:
    borrower = debtor(sessions)
    with sessions.begin() as session:
        active = session.scalars(
            select(MessageTemplate).where(
                MessageTemplate.kind == 'account_password',
                MessageTemplate.channel == 'sms',
                MessageTemplate.active.is_(True),
            )
        ).all()
        for template in active:
            template.active = False
    try:
        with pytest.raises(BadMessage, match='Нет действующего шаблона SMS вида «Пароль ЛК»'):
            messaging.send_password(operator, borrower.id, 'sms')
    finally:
        with sessions.begin() as session:
            for template in active:
                session.get(MessageTemplate, template.id).active = True
    assert site.passwords == []


def test_a_failure_after_the_reset_is_logged_without_the_password_and_refused(
    messaging, sessions, operator, site, monkeypatch, caplog
) -> None:
    borrower = debtor(sessions)

    def broken_queue(*args: Any, **kwargs: Any) -> int:
        raise OperationalError('INSERT …', {}, Exception('connection lost'))

    monkeypatch.setattr(outbox, 'queue', broken_queue)
    with pytest.raises(ServiceError, match='Пароль на сайте ЛК сменён, но сообщение с ним не удалось'):
        messaging.send_password(operator, borrower.id, 'sms')
    (password,) = site.passwords
    assert 'was reset but not queued (OperationalError)' in caplog.text and password not in caplog.text
    assert written(sessions, borrower.id) == (0, 0, 0)


def test_queue_status_of_a_password_is_queued(messaging, sessions, operator) -> None:
    borrower = debtor(sessions)
    queued = messaging.send_password(operator, borrower.id, MessageChannel.SMS)
    assert queued.status is OutboxStatus.QUEUED and queued.to.startswith('+7')


# --- the HTTP API ------------------------------------------------------------------------------------


@pytest.fixture
def client(system) -> TestClient:
    app = FastAPI()
    routes.install(app, system.services)
    return TestClient(app)


def post(client: TestClient, pin: str, body: Any, token: str = TOKEN) -> Any:
    return client.post(
        f'/api/v1/borrowers/{pin}/messages', json=body, headers={'Authorization': f'Bearer {token}'}
    )


def test_api_queues_an_sms_and_answers_202_with_the_outbox_id(client, sessions) -> None:
    borrower = debtor(sessions)
    response = post(client, borrower.pin, {'channel': 'sms', 'text': sms_text()})
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer['status'] == 'queued' and answer['channel'] == 'sms'
    with sessions() as session:
        row = session.get(OutboxMessage, answer['id'])
        entry = session.scalars(
            select(AuditEntry).where(
                AuditEntry.borrower_id == borrower.id, AuditEntry.action == 'message.sms'
            )
        ).one()
    assert (row.borrower_id, row.operator_id, row.body) == (borrower.id, None, sms_text())
    assert entry.user_id is None and '"by": "api:' in entry.details


def test_api_renders_a_template_when_no_text_is_given(client, sessions) -> None:
    borrower = debtor(sessions, email=f'api{unique()}@example.ru')
    with sessions() as session:
        template_id = session.scalar(
            select(MessageTemplate.id).where(
                MessageTemplate.channel == 'email', MessageTemplate.kind == 'overdue', MessageTemplate.active
            )
        )
    response = post(client, borrower.pin, {'channel': 'email', 'template_id': template_id})
    assert response.status_code == 202, response.text
    with sessions() as session:
        row = session.get(OutboxMessage, response.json()['id'])
    assert (
        row.subject.startswith('Просроченная задолженность по займу № T') and SIGN.split(',')[0] in row.body
    )


@pytest.mark.parametrize(
    ('case', 'body', 'field', 'message'),
    [
        ('long', {'channel': 'sms', 'text': 'Я' * 700 + SIGN}, 'text', 'Текст SMS не должен быть длиннее'),
        (
            'bad_email',
            {'channel': 'email', 'subject': 'Т', 'text': SIGN},
            'channel',
            'нет корректного e-mail',
        ),
        ('no_mobile', {'channel': 'sms', 'text': SIGN}, 'channel', 'нет мобильного телефона'),
        ('template', {'channel': 'sms', 'text': SIGN, 'template_id': 999_999_999}, 'template_id', 'Шаблон'),
        ('nul', {'channel': 'sms', 'text': 'a\x00' + SIGN}, 'text', 'must not contain NUL'),
        ('channel', {'channel': 'pigeon', 'text': SIGN}, 'channel', 'Input should be'),
        ('extra', {'channel': 'sms', 'text': SIGN, 'to': '79990000000'}, 'to', 'Extra inputs'),
        ('nothing', {'channel': 'sms'}, 'text', 'Укажите текст сообщения или шаблон'),
    ],
)
def test_api_bad_message_is_422_naming_the_field_and_writes_nothing(
    client, sessions, case: str, body: dict[str, Any], field: str, message: str
) -> None:
    borrower = debtor(sessions, email='ivanov.mail.ru' if case == 'bad_email' else None)
    if case == 'no_mobile':
        with sessions.begin() as session:
            for phone in session.scalars(
                select(BorrowerPhone).where(BorrowerPhone.borrower_id == borrower.id)
            ):
                phone.kind = 'work'
    response = post(client, borrower.pin, body)
    assert response.status_code == 422, response.text
    (detail,) = response.json()['detail']
    assert detail['loc'] == ['body', field] and message in detail['msg']
    assert written(sessions, borrower.id) == (0, 0, 0)


def test_api_refusal_by_law_is_409_with_the_rule_and_the_next_moment(client, sessions, clock) -> None:
    borrower = debtor(sessions)
    for _ in range(2):
        assert post(client, borrower.pin, {'channel': 'sms', 'text': sms_text()}).status_code == 202
    response = post(client, borrower.pin, {'channel': 'sms', 'text': sms_text()})
    assert response.status_code == 409
    (detail,) = response.json()['detail']
    assert (detail['type'], detail['rule'], detail['next_allowed_at']) == (
        'refused_by_law',
        'limit_day',
        '2026-11-27T05:00:00+00:00',
    )
    assert detail['msg'].startswith('Лимит 230-ФЗ: не более 2 сообщений в сутки')
    assert written(sessions, borrower.id)[1] == 2


def test_api_unknown_pin_is_404_and_tokens_are_checked(client, system, sessions) -> None:
    assert post(client, '0000000000', {'channel': 'sms', 'text': SIGN}).status_code == 404
    assert post(client, '12%0034', {'channel': 'sms', 'text': SIGN}).status_code == 404  # a NUL in the PIN
    assert post(client, '0000000000', {'channel': 'sms', 'text': SIGN}, token='wrong').status_code == 401
    with sessions() as session:
        admin = to_actor(session.scalar(select(UserRow).where(UserRow.login == 'admin')))
    lookup, _ = system.services.api_tokens.create(admin, 'Только поиск', 'lookup')
    borrower = debtor(sessions)
    assert post(client, borrower.pin, {'channel': 'sms', 'text': sms_text()}, token=lookup).status_code == 403
    assert written(sessions, borrower.id) == (0, 0, 0)
