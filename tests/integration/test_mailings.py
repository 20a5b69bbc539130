"""Mass mailings on the real database: segments, the law at queue time and at send time, the worker,
pause / resume / cancel, the report and its CSV (SQLite, and PostgreSQL under CI)."""

from __future__ import annotations

import csv
import io
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from crm import bootstrap
from crm.bootstrap import System
from crm.db.engine import make_sessions
from crm.db.models import (
    AuditEntry,
    Borrower,
    BorrowerPhone,
    Communication,
    Loan,
    Mailing,
    MessageTemplate,
    OutboxMessage,
)
from crm.domain import Role
from crm.domain.contact_rules import LegalFlag
from crm.domain.errors import AccessDenied, ServiceError
from crm.domain.identifiers import name_key
from crm.domain.messages import MessageChannel, OutboxStatus
from crm.domain.notifications import MailingProgress, from_wire
from crm.integrations.mail import RecordingMailer
from crm.integrations.sms import RecordingSms
from crm.services.auth import to_actor
from crm.services.compliance import LEDGER_DAYS, counted_messages
from crm.services.mailing_law import TEXT_RULE, LawCheck, segment_ledger
from crm.services.mailing_views import mask_address
from crm.services.mailing_worker import MailingWorker, batch_values
from crm.services.mailings import MailingService
from crm.services.message_text import variables_of
from crm.services.notifier import Notifier
from crm.services.outbox_dispatcher import OutboxDispatcher
from crm.services.segments import Segment, flags_of, segment_query
from tests.conftest import TEST_NOW
from tests.factories import make_user, unique

CREDITOR_TEXT = '{{ creditor_name }}, тел. {{ contact_phone }}'
VLADIVOSTOK = 'Asia/Vladivostok'  # UTC+10
KALININGRAD = 'Europe/Kaliningrad'  # UTC+2


@pytest.fixture
def mailings(system) -> MailingService:
    return system.services.mailings


@pytest.fixture
def own_sessions(engine, clock) -> sessionmaker[Session]:
    return make_sessions(engine, clock)


@pytest.fixture
def worker(system, own_sessions, bus, clock) -> MailingWorker:
    return _worker(system, own_sessions, bus, clock)


def _worker(system: System, sessions, bus, clock, batch_size: int = 1000) -> MailingWorker:
    return MailingWorker(
        sessions,
        system.services.compliance,
        bootstrap.creditor_of(system.settings),
        Notifier(bus),
        clock=clock,
        ttl=timedelta(hours=72),
        batch_size=batch_size,
    )


@pytest.fixture
def sms() -> RecordingSms:
    return RecordingSms()


@pytest.fixture
def dispatcher(system, own_sessions, bus, clock, sms) -> OutboxDispatcher:
    return OutboxDispatcher(
        own_sessions,
        sms=sms,
        mail=RecordingMailer(),
        compliance=system.services.compliance,
        notifier=Notifier(bus),
        clock=clock,
    )


@pytest.fixture
def supervisor(sessions):
    return to_actor(make_user(sessions, role=Role.SUPERVISOR))


@pytest.fixture
def city() -> str:
    """A city of this test's own: segments narrowed to it see only this test's borrowers."""
    return f'Рассылкино-{unique()}'


def make_template(sessions, body: str, *, channel: str = 'sms', subject: str | None = None, **kw: Any) -> int:
    with sessions.begin() as session:
        template = MessageTemplate(
            channel=channel,
            kind=kw.get('kind', 'overdue'),
            name=f'Шаблон {unique()}',
            subject=subject,
            body=body,
            active=kw.get('active', True),
            updated_at=TEST_NOW,
        )
        session.add(template)
        session.flush()
        return template.id


@pytest.fixture
def template(sessions) -> int:
    return make_template(sessions, '{{ name }}, просрочка {{ overdue_amount }}. ' + CREDITOR_TEXT)


def borrower(
    sessions,
    city: str,
    *,
    tz: str = 'Europe/Moscow',
    dpd: int = 10,
    overdue: str = '5000',
    product: str = 'PDL До зарплаты',
    status: int = 3000,
    loan_state: str = 'active',
    last_contact: datetime | None = None,
    mobile: bool = True,
    email: str | None = None,
    flag: LegalFlag | None = None,
    archived: bool = False,
) -> int:
    n = unique()
    with sessions.begin() as session:
        row = Borrower(
            pin=f'{8_100_000_000 + n}',
            last_name='Рассылкин',
            first_name='Пётр',
            middle_name=None,
            search_name=name_key('Рассылкин Пётр'),
            birth_date=date(1990, 1, 1),
            city=city,
            timezone=tz,
            email=email,
            monthly_payment=Decimal('1000'),
            archived=archived,
            total_debt=Decimal(overdue),
            overdue_amount=Decimal(overdue),
            days_past_due=dpd,
            last_contact_at=last_contact,
            created_at=TEST_NOW,
            phones=[
                BorrowerPhone(phone=f'7988{n:07d}', kind='mobile' if mobile else 'home', is_primary=True)
            ],
            loans=[
                Loan(
                    number=f'M{n:07d}',
                    product=product,
                    amount=Decimal('10000'),
                    term_days=30,
                    rate=Decimal('0.8'),
                    issued_on=date(2026, 9, 1),
                    due_on=date(2026, 10, 1),
                    state=loan_state,
                    status_code=status,
                    status_name='Просрочка',
                    total_debt=Decimal(overdue),
                    overdue_amount=Decimal(overdue),
                    days_past_due=dpd,
                )
            ],
        )
        if flag is not None:
            setattr(row, flag.value, True)
        session.add(row)
        session.flush()
        return row.id


def sent_before(sessions, borrower_id: int, *moments: datetime) -> None:
    """Counted messages already in the ledger (sent by the card, say)."""
    with sessions.begin() as session:
        for moment in moments:
            session.add(
                Communication(
                    borrower_id=borrower_id,
                    channel='sms',
                    direction='out',
                    started_at=moment,
                    body='Ранее',
                    delivery_status='sent',
                    collection=True,
                )
            )


def rows_of(sessions, mailing_id: int) -> dict[int, OutboxMessage]:
    with sessions() as session:
        found = session.scalars(select(OutboxMessage).where(OutboxMessage.mailing_id == mailing_id))
        return {row.borrower_id: row for row in found if row.borrower_id is not None}


def segment_ids(sessions, segment: Segment, now: datetime = TEST_NOW) -> set[int]:
    with sessions() as session:
        return set(session.scalars(segment_query(segment, MessageChannel.SMS, now)))


# --- segments ----------------------------------------------------------------------------------------
def test_each_segment_filter_narrows(sessions, city) -> None:
    other = f'{city}-2'
    base = borrower(sessions, city)
    ids = {
        'late': borrower(sessions, city, dpd=60, overdue='40000'),
        'current': borrower(sessions, city, dpd=0, overdue='0'),
        'product': borrower(sessions, city, product='IL Стандарт'),
        'status': borrower(sessions, city, status=3200),
        'far': borrower(sessions, other, tz=VLADIVOSTOK),
        'contacted': borrower(sessions, city, last_contact=TEST_NOW - timedelta(days=2)),
        'long_ago': borrower(sessions, city, last_contact=TEST_NOW - timedelta(days=40)),
        'archived': borrower(sessions, city, archived=True),
        'archived_loan': borrower(sessions, city, product='Потреб Лайт', loan_state='archived'),
    }
    both = (city, other)
    everyone = segment_ids(sessions, Segment(cities=both))
    assert everyone == {base, *ids.values()} - {ids['archived']}
    assert segment_ids(sessions, Segment(cities=both, include_archived=True)) == everyone | {ids['archived']}
    assert segment_ids(sessions, Segment(cities=both, dpd_min=30)) == {ids['late']}
    assert ids['current'] not in segment_ids(sessions, Segment(cities=both, dpd_min=1))
    assert segment_ids(sessions, Segment(cities=both, dpd_max=0)) == {ids['current']}
    assert segment_ids(sessions, Segment(cities=both, overdue_min=Decimal('10000'))) == {ids['late']}
    assert segment_ids(sessions, Segment(cities=both, overdue_max=Decimal('0'))) == {ids['current']}
    assert segment_ids(sessions, Segment(cities=both, products=('IL Стандарт',))) == {ids['product']}
    assert segment_ids(sessions, Segment(cities=both, products=('Потреб Лайт',))) == set()
    archived_too = Segment(cities=both, products=('Потреб Лайт',), include_archived=True)
    assert segment_ids(sessions, archived_too) == {ids['archived_loan']}
    assert segment_ids(sessions, Segment(cities=both, statuses=(3200,))) == {ids['status']}
    assert segment_ids(sessions, Segment(cities=(other,))) == {ids['far']}
    assert segment_ids(sessions, Segment(cities=both, timezones=(VLADIVOSTOK,))) == {ids['far']}
    quiet = segment_ids(sessions, Segment(cities=both, no_contact_days=30))
    assert ids['long_ago'] in quiet and base in quiet  # never contacted counts as long ago
    assert ids['contacted'] not in quiet


def test_a_segment_survives_its_json_and_refuses_nonsense() -> None:
    segment = Segment(
        dpd_min=1,
        dpd_max=30,
        overdue_min=Decimal('1000.50'),
        products=('PDL До зарплаты',),
        statuses=(3000,),
        timezones=(VLADIVOSTOK,),
        no_contact_days=7,
    )
    assert Segment.from_json(segment.to_json()) == segment
    for bad, message in [
        (Segment(dpd_min=10, dpd_max=5), 'Дней просрочки'),
        (Segment(overdue_min=Decimal(-1)), 'Сумма просрочки'),
        (Segment(timezones=('Mars/Olympus',)), 'Часовой пояс'),
        (Segment(no_contact_days=-1), 'Последний контакт'),
    ]:
        with pytest.raises(ServiceError, match=message):
            bad.checked()


# --- the law, set-wise, equals the per-borrower rule ---------------------------------------------------
@pytest.mark.parametrize('hour_utc', [9, 13, 19])  # noon in Moscow; late evening in the east; night
def test_the_set_wise_check_equals_the_per_borrower_rule(system, sessions, hour_utc) -> None:
    """The demo borrowers (every zone) plus ledgers that reach each limit: the preview's verdicts are
    ``check_outgoing_message`` / ``ComplianceService.message_verdict`` borrower by borrower."""
    now = TEST_NOW.replace(hour=hour_utc)
    city = f'Сверка-{unique()}'
    busy = [borrower(sessions, city, tz=tz) for tz in (VLADIVOSTOK, KALININGRAD, 'Asia/Kamchatka')]
    sent_before(sessions, busy[0], now - timedelta(hours=1), now - timedelta(hours=2))
    sent_before(sessions, busy[1], *(now - timedelta(days=d) for d in (1, 2, 3, 4)))
    sent_before(sessions, busy[2], now - timedelta(hours=3))
    week = borrower(sessions, city, tz=KALININGRAD)  # Monday 23.11 to today: the week's four
    sent_before(sessions, week, *(now - timedelta(days=d, hours=1) for d in (0, 1, 2, 3)))
    month = borrower(sessions, city)  # sixteen in November, none this week
    sent_before(sessions, month, *(datetime(2026, 11, d, 10, tzinfo=UTC) for d in range(1, 17)))
    room = borrower(sessions, city, tz='Asia/Kamchatka')  # one today, one yesterday: room left
    sent_before(sessions, room, now - timedelta(hours=1), now - timedelta(days=1))
    tomorrow = borrower(sessions, city)  # two held for tomorrow already count there, not today
    sent_before(sessions, tomorrow, now + timedelta(days=1), now + timedelta(days=1, hours=1))
    borrower(sessions, city, flag=LegalFlag.BANKRUPT)
    compliance = system.services.compliance
    law = LawCheck(compliance.message_limits, now, timedelta(hours=72))
    checked = 0
    rules: dict[int, str | None] = {}
    with sessions() as session:
        rows = session.execute(segment_query(Segment(), MessageChannel.SMS, now)).all()
        ledger = counted_messages(session, [r.id for r in rows], now - timedelta(days=LEDGER_DAYS))
        for row in rows:
            decision = law.decide(row.timezone, row.days_past_due > 0, flags_of(row), ledger[row.id])
            verdict = compliance.message_verdict(session.get(Borrower, row.id), ledger[row.id], now=now)
            assert decision.rule == verdict.rule
            rules[row.id] = verdict.rule
            assert decision.reason == verdict.reason or decision.status is OutboxStatus.REFUSED
            if verdict.allowed:
                assert decision.status is OutboxStatus.QUEUED and decision.not_before is None
            elif decision.status is OutboxStatus.QUEUED:
                assert decision.not_before == verdict.next_allowed_at
            checked += 1
    assert checked > 250
    assert len(law._memo) < checked  # the point: equal inputs were decided once
    if hour_utc == 9:  # every window open: the limits themselves decide
        assert [rules[week], rules[month], rules[room], rules[tomorrow]] == [
            'limit_week',
            'limit_month',
            None,
            None,
        ]


def test_the_preview_reads_what_the_worker_reads(sessions, city) -> None:
    """The whole segment's statement (phones joined, ranked) and ledger (a semi-join) equal the batch's
    (a phone looked up per row) and ``counted_messages``."""
    two = borrower(sessions, city)
    borrower(sessions, city, mobile=False)
    with sessions.begin() as session:  # a second mobile, made primary: it is the one written to
        session.execute(
            update(BorrowerPhone).where(BorrowerPhone.borrower_id == two).values(is_primary=False)
        )
        session.add(
            BorrowerPhone(borrower_id=two, phone=f'7966{unique():07d}', kind='mobile', is_primary=True)
        )
        session.add(
            BorrowerPhone(borrower_id=two, phone=f'7955{unique():07d}', kind='work', is_primary=False)
        )
    sent_before(sessions, two, TEST_NOW - timedelta(hours=1))
    everyone = Segment()
    with sessions() as session:
        joined = session.execute(segment_query(everyone, MessageChannel.SMS, TEST_NOW, joined=True)).all()
        looked_up = session.execute(segment_query(everyone, MessageChannel.SMS, TEST_NOW)).all()
        assert [(r.id, r.address) for r in joined] == [(r.id, r.address) for r in looked_up]
        assert any(r.address is None for r in joined) and len(joined) > 300
        ids = [r.id for r in joined if r.days_past_due > 0 and not flags_of(r)]
        expected = counted_messages(session, ids, TEST_NOW - timedelta(days=LEDGER_DAYS))
        found = segment_ledger(session, everyone, TEST_NOW)
    assert {k: sorted(v) for k, v in found.items()} == {k: sorted(v) for k, v in expected.items() if v}
    assert two in found
    assert next(r.address for r in joined if r.id == two).startswith('7966')


def test_preview_counts_what_the_law_lets_through_today(mailings, supervisor, sessions, clock, city) -> None:
    clock.now = datetime(2026, 11, 26, 12, 30, tzinfo=UTC)  # Vladivostok 22:30, Kaliningrad 14:30
    borrower(sessions, city, tz=KALININGRAD)
    borrower(sessions, city, tz=KALININGRAD, dpd=0, overdue='0')
    borrower(sessions, city, tz=VLADIVOSTOK)
    limited = borrower(sessions, city, tz=KALININGRAD)
    sent_before(sessions, limited, clock.now - timedelta(hours=2), clock.now - timedelta(hours=1))
    soon = borrower(sessions, city, tz='Asia/Yekaterinburg')  # 17:30, one sent: allowed
    sent_before(sessions, soon, clock.now - timedelta(hours=1))
    borrower(sessions, city, flag=LegalFlag.CONTACT_REFUSED)
    borrower(sessions, city, mobile=False)
    preview = mailings.preview(supervisor, Segment(cities=(city,)), 'sms')
    assert (preview.in_segment, preview.no_address, preview.with_address) == (7, 1, 6)
    assert preview.no_address_label == 'нет мобильного телефона'
    assert preview.allowed_now == 3
    assert (preview.held_today, preview.held_later) == (0, 2)
    assert {(r.rule, r.count) for r in preview.held} == {('quiet_hours', 1), ('limit_day', 1)}
    assert [(r.rule, r.label, r.count) for r in preview.refused] == [
        ('contact_refused', 'Отказ от взаимодействия', 1)
    ]
    assert preview.allowed_today == 3


# --- the law at queue time --------------------------------------------------------------------------
def test_the_law_at_queue_time(mailings, worker, supervisor, sessions, clock, city, template) -> None:
    fine = borrower(sessions, city)
    full = borrower(sessions, city)
    sent_before(sessions, full, clock.now - timedelta(hours=2), clock.now - timedelta(hours=1))
    flagged = borrower(sessions, city, flag=LegalFlag.BANKRUPT)
    current = borrower(sessions, city, dpd=0, overdue='0')
    no_phone = borrower(sessions, city, mobile=False)
    mailing = mailings.create(supervisor, 'Просрочка', 'sms', template, Segment(cities=(city,)))
    assert worker.run_once() == 5
    rows = rows_of(sessions, mailing.id)
    assert set(rows) == {fine, full, flagged, current} and no_phone not in rows
    assert rows[fine].status == 'queued' and rows[fine].not_before == clock.now and rows[fine].rule is None
    assert rows[fine].purpose == 'collection' and rows[current].purpose == 'service'
    assert 'просрочка 5 000,00 ₽' in rows[fine].body and 'Демо Займ' in rows[fine].body
    # two counted today: held until tomorrow's window opens, 08:00 Moscow on Thursday 27.11
    assert rows[full].status == 'queued' and rows[full].rule == 'limit_day'
    assert rows[full].not_before == datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
    assert 'не более 2 сообщений в сутки' in rows[full].reason
    assert rows[flagged].status == 'refused' and rows[flagged].rule == 'bankrupt'
    assert rows[flagged].reason.startswith('Сообщения запрещены')
    with sessions() as session:
        history = session.get(Communication, rows[flagged].communication_id)
        assert history.delivery_status == 'refused' and history.collection is True
        done = session.get(Mailing, mailing.id)
        assert (done.status, done.total, done.no_address, done.cursor) == ('done', 5, 1, no_phone)


def test_quiet_hours_in_the_borrowers_zone(
    mailings, worker, supervisor, sessions, clock, city, template
) -> None:
    clock.now = datetime(2026, 11, 26, 12, 30, tzinfo=UTC)  # the same moment: 22:30 and 14:30 local
    east = borrower(sessions, city, tz=VLADIVOSTOK)
    west = borrower(sessions, city, tz=KALININGRAD)
    mailing = mailings.create(supervisor, 'Тихие часы', 'sms', template, Segment(cities=(city,)))
    worker.run_once()
    rows = rows_of(sessions, mailing.id)
    assert rows[west].not_before == clock.now and rows[west].rule is None
    assert rows[east].rule == 'quiet_hours' and 'у заёмщика 22:30' in rows[east].reason
    assert rows[east].not_before == datetime(2026, 11, 26, 22, 0, tzinfo=UTC)  # 08:00 on 27.11 there


def test_across_a_change_of_day_in_the_borrowers_zone(
    mailings, worker, dispatcher, sms, supervisor, sessions, clock, city, template
) -> None:
    """Queued at 21:50 in Vladivostok and not sent before 22:00: the dispatcher holds it until 08:00
    local; a borrower at the day's limit waits for the same morning; both go once the day turned."""
    clock.now = datetime(2026, 11, 26, 11, 50, tzinfo=UTC)  # 21:50 in Vladivostok, Thursday tomorrow
    late = borrower(sessions, city, tz=VLADIVOSTOK)
    full = borrower(sessions, city, tz=VLADIVOSTOK)
    sent_before(sessions, full, clock.now - timedelta(hours=10), clock.now - timedelta(hours=9))
    mailing = mailings.create(supervisor, 'Через полночь', 'sms', template, Segment(cities=(city,)))
    worker.run_once()
    rows = rows_of(sessions, mailing.id)
    morning = datetime(2026, 11, 26, 22, 0, tzinfo=UTC)  # 08:00 on 27.11 in Vladivostok
    assert rows[late].not_before == clock.now and rows[late].rule is None  # allowed when queued
    assert rows[full].not_before == morning and rows[full].rule == 'limit_day'

    clock.now = datetime(2026, 11, 26, 12, 5, tzinfo=UTC)  # 22:05 there: the dispatcher holds it
    dispatcher.run_once()
    rows = rows_of(sessions, mailing.id)
    assert rows[late].status == 'queued' and rows[late].rule == 'quiet_hours'
    assert rows[late].not_before == morning
    keys = {rows[late].key, rows[full].key}

    clock.now = morning - timedelta(minutes=1)  # 07:59 on the new day there: still nothing
    dispatcher.run_once()
    assert not keys & {message.id for message in sms.sent}

    clock.now = morning
    dispatcher.run_once()
    rows = rows_of(sessions, mailing.id)
    assert rows[late].status == rows[full].status == 'sent'
    assert keys <= {message.id for message in sms.sent}
    report = mailings.report(supervisor, mailing.id)
    assert (report.sent, report.held_total, report.mailing.progress) == (2, 0, 1.0)


def test_a_text_that_cannot_be_made_is_refused_with_its_reason(
    mailings, worker, supervisor, sessions, city
) -> None:
    promised = make_template(sessions, 'Вы обещали {{ promise_amount }}. ' + CREDITOR_TEXT)
    someone = borrower(sessions, city)
    mailing = mailings.create(supervisor, 'Обещания', 'sms', promised, Segment(cities=(city,)))
    worker.run_once()
    row = rows_of(sessions, mailing.id)[someone]
    assert row.status == 'refused' and row.rule == TEXT_RULE
    assert 'promise_amount' in row.reason
    assert mailings.report(supervisor, mailing.id).refused[0].label == 'Ошибка в тексте'


def test_an_email_mailing_needs_an_address(mailings, worker, supervisor, sessions, city) -> None:
    letter = make_template(
        sessions, 'Здравствуйте, {{ name }}! ' + CREDITOR_TEXT, channel='email', subject='Долг {{ pin }}'
    )
    with_mail = borrower(sessions, city, email='petr@mail.example')
    borrower(sessions, city)
    borrower(sessions, city, email='not an address')
    mailing = mailings.create(supervisor, 'Письма', 'email', letter, Segment(cities=(city,)))
    worker.run_once()
    rows = rows_of(sessions, mailing.id)
    assert set(rows) == {with_mail}
    assert rows[with_mail].subject.startswith('Долг 81') and rows[with_mail].to_address == 'petr@mail.example'
    report = mailings.report(supervisor, mailing.id)
    assert (report.no_address, report.no_address_label) == (2, 'нет e-mail')


def test_batch_variables_equal_the_per_borrower_ones(system, sessions) -> None:
    every = ' '.join(f'{{{{ {name} }}}}' for name in ('name', 'loan_number', 'due_date', 'promise_amount'))
    creditor = bootstrap.creditor_of(system.settings)
    with sessions() as session:
        rows = session.execute(
            segment_query(Segment(), MessageChannel.SMS, TEST_NOW, *_columns()).limit(150)
        ).all()
        found = batch_values(session, rows, creditor, None, every)
        for row in rows:
            assert found[row.id] == variables_of(session, session.get(Borrower, row.id), creditor)


def _columns() -> list[Any]:
    table = Borrower.__table__
    names = (
        'pin',
        'last_name',
        'first_name',
        'middle_name',
        'total_debt',
        'overdue_amount',
        'monthly_payment',
    )
    return [table.c[name] for name in names]


# --- the worker: batches, two at once, pause / resume / cancel ---------------------------------------
def test_batches_move_the_cursor_with_their_rows(
    system, own_sessions, bus, clock, mailings, supervisor, sessions, city, template
) -> None:
    ids = [borrower(sessions, city) for _ in range(7)]
    small = _worker(system, own_sessions, bus, clock, batch_size=3)
    mailing = mailings.create(supervisor, 'Пачки', 'sms', template, Segment(cities=(city,)))
    bus.ui.clear()
    assert small.queue_batch().handled == 3
    with sessions() as session:
        state = session.get(Mailing, mailing.id)
        assert (state.status, state.cursor, state.total, state.started_at) == (
            'running',
            ids[2],
            7,
            clock.now,
        )
    assert set(rows_of(sessions, mailing.id)) == set(ids[:3])
    assert small.run_once() == 4
    assert set(rows_of(sessions, mailing.id)) == set(ids)
    notices = [n for body in bus.ui for n in from_wire(body) if isinstance(n, MailingProgress)]
    assert notices and notices[-1] == MailingProgress(mailing.id, 'done')
    assert small.run_once() == 0  # nothing due any more


@pytest.mark.postgres
def test_two_workers_queue_a_mailing_once(
    system, engine, bus, clock, mailings, supervisor, sessions, city, template, is_postgres
) -> None:
    if not is_postgres:
        pytest.skip('row locks (FOR UPDATE SKIP LOCKED) are PostgreSQL’s')
    with sessions.begin() as session:  # 400 borrowers in one go
        for _ in range(400):
            session.add(_quick_borrower(city))
    mailing = mailings.create(supervisor, 'Вдвоём', 'sms', template, Segment(cities=(city,)))
    workers = [_worker(system, make_sessions(engine, clock), bus, clock, batch_size=25) for _ in range(2)]
    with engine.connect() as holder:  # another process is queueing a batch of it: the worker passes it by
        holder.execute(select(Mailing.id).where(Mailing.id == mailing.id).with_for_update())
        passed = threading.Thread(target=workers[0].queue_batch)
        passed.start()
        passed.join(timeout=10)
        waited = passed.is_alive()  # it waits for the lock instead of passing by
        holder.rollback()
        passed.join()
    assert not waited and rows_of(sessions, mailing.id) == {}
    handled: list[int] = []
    start = threading.Barrier(2)

    def run(worker: MailingWorker) -> None:
        start.wait()
        handled.append(worker.run_once())

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with sessions() as session:
        count, distinct = session.execute(
            select(func.count(), func.count(OutboxMessage.borrower_id.distinct())).where(
                OutboxMessage.mailing_id == mailing.id
            )
        ).one()
        state = session.get(Mailing, mailing.id)
    assert count == distinct == 400 == sum(handled)  # each borrower once, whichever worker queued it
    assert (state.status, state.total) == ('done', 400)


def _quick_borrower(city: str) -> Borrower:
    k = unique()
    return Borrower(
        pin=f'{8_200_000_000 + k}',
        last_name='Параллельный',
        first_name='Иван',
        search_name='параллельный иван',
        birth_date=date(1990, 1, 1),
        city=city,
        timezone='Europe/Moscow',
        days_past_due=5,
        overdue_amount=Decimal(1000),
        total_debt=Decimal(1000),
        created_at=TEST_NOW,
        phones=[BorrowerPhone(phone=f'7977{k:07d}', kind='mobile', is_primary=True)],
    )


def test_pause_resume_and_cancel(
    system, own_sessions, bus, clock, mailings, dispatcher, sms, supervisor, sessions, city, template
) -> None:
    ids = [borrower(sessions, city) for _ in range(6)]
    small = _worker(system, own_sessions, bus, clock, batch_size=2)
    mailing = mailings.create(supervisor, 'Пауза', 'sms', template, Segment(cities=(city,)))
    small.queue_batch()
    paused = mailings.pause(supervisor, mailing.id)
    assert paused.status == 'paused' and paused.status_label == 'На паузе'
    assert small.run_once() == 0  # no more batches while paused
    dispatcher.run_once()  # and what was queued does not go
    rows = rows_of(sessions, mailing.id)
    assert {row.status for row in rows.values()} == {'paused'} and len(rows) == 2
    assert not {row.key for row in rows.values()} & {m.id for m in sms.sent}
    with pytest.raises(ServiceError, match='на паузе'):
        mailings.pause(supervisor, mailing.id)

    assert mailings.resume(supervisor, mailing.id).status == 'running'
    small.queue_batch()  # two more
    dispatcher.run_once()  # the four queued go
    assert mailings.report(supervisor, mailing.id).sent == 4

    cancelled = mailings.cancel(supervisor, mailing.id)
    assert cancelled.status == 'cancelled' and cancelled.total == 4 and cancelled.progress == 1.0
    assert small.run_once() == 0
    assert set(rows_of(sessions, mailing.id)) == set(ids[:4])
    with pytest.raises(ServiceError, match='отменена'):
        mailings.resume(supervisor, mailing.id)
    with sessions() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.details.contains(f'"mailing_id": {mailing.id}'))
        ).all()
    assert sorted(actions) == ['mailing.cancel', 'mailing.create', 'mailing.pause', 'mailing.resume']


def test_cancel_ends_what_waits_for_the_law(
    mailings, worker, supervisor, sessions, clock, city, template
) -> None:
    clock.now = datetime(2026, 11, 26, 12, 30, tzinfo=UTC)
    east = borrower(sessions, city, tz=VLADIVOSTOK)  # held until its morning
    mailing = mailings.create(supervisor, 'Отмена', 'sms', template, Segment(cities=(city,)))
    worker.run_once()
    mailings.cancel(supervisor, mailing.id)
    row = rows_of(sessions, mailing.id)[east]
    assert (row.status, row.reason) == ('cancelled', 'Рассылка отменена')
    with sessions() as session:
        assert session.get(Communication, row.communication_id).delivery_status == 'cancelled'
        since = clock.now - timedelta(days=LEDGER_DAYS)
        assert counted_messages(session, [east], since)[east] == []  # no longer counts against the law


def test_a_scheduled_mailing_waits_for_its_moment(
    mailings, worker, supervisor, sessions, clock, city, template
) -> None:
    someone = borrower(sessions, city)
    later = clock.now + timedelta(hours=2)
    mailing = mailings.create(supervisor, 'Позже', 'sms', template, Segment(cities=(city,)), start_at=later)
    assert (mailing.status, mailing.status_label) == ('scheduled', 'Запланирована')
    worker.run_once()
    assert rows_of(sessions, mailing.id) == {}
    clock.now = later
    worker.run_once()
    assert set(rows_of(sessions, mailing.id)) == {someone}


# --- the report and its CSV --------------------------------------------------------------------------
def test_report_and_csv(mailings, worker, dispatcher, supervisor, sessions, clock, city, template) -> None:
    for _ in range(2):
        borrower(sessions, city)
    full = borrower(sessions, city)
    sent_before(sessions, full, clock.now - timedelta(hours=2), clock.now - timedelta(hours=1))
    borrower(sessions, city, flag=LegalFlag.INCAPACITATED)
    borrower(sessions, city, mobile=False)
    mailing = mailings.create(supervisor, 'Отчёт', 'sms', template, Segment(cities=(city,)))
    worker.run_once()
    dispatcher.run_once()
    report = mailings.report(supervisor, mailing.id)
    assert (report.mailing.total, report.no_address, report.sent, report.waiting) == (5, 1, 2, 0)
    assert [(r.rule, r.count) for r in report.held] == [('limit_day', 1)]
    assert [(r.rule, r.count) for r in report.refused] == [('incapacitated', 1)]
    assert report.mailing.finished == 4 and report.mailing.progress == pytest.approx(0.8)
    assert report.mailing.status_label == 'Отправляется'

    data = mailings.report_csv(supervisor, mailing.id)
    assert data.startswith('\ufeff'.encode())
    lines = list(csv.reader(io.StringIO(data.decode('utf-8-sig')), delimiter=';'))
    assert lines[0][:4] == ['PIN', 'ФИО', 'Адрес', 'Статус']
    assert len(lines) == 1 + 4
    statuses = sorted(line[3] for line in lines[1:])
    assert statuses == ['В очереди', 'Запрещено 230-ФЗ', 'Отправлено', 'Отправлено']
    rows = rows_of(sessions, mailing.id)
    for line in lines[1:]:
        assert line[2].startswith('+7 988 ***-**-') and not any(
            r.to_address in line[2] for r in rows.values()
        )
    held = next(line for line in lines[1:] if line[3] == 'В очереди')
    assert held[4] == 'Лимит в сутки' and 'не более 2 сообщений' in held[5]
    with sessions() as session:
        assert (
            session.scalar(
                select(func.count()).where(
                    AuditEntry.action == 'mailing.export',
                    AuditEntry.details.contains(f'"mailing_id": {mailing.id}'),
                )
            )
            == 1
        )


def test_masking() -> None:
    assert mask_address('sms', '79280009977') == '+7 928 ***-**-77'
    assert mask_address('email', 'ivan.petrov@mail.ru') == 'iv***@mail.ru'
    assert mask_address('email', 'ab@x.ru') == 'a***@x.ru'


# --- who may, and bad input ---------------------------------------------------------------------------
def test_only_supervisors_and_admins(mailings, sessions, template) -> None:
    operator = to_actor(make_user(sessions, role=Role.OPERATOR))
    for call in (
        lambda: mailings.list(operator),
        lambda: mailings.preview(operator, Segment(), 'sms'),
        lambda: mailings.create(operator, 'Нет', 'sms', template, Segment()),
        lambda: mailings.options(operator),
    ):
        with pytest.raises(AccessDenied):
            call()


def test_bad_input_is_refused_and_nothing_is_written(mailings, supervisor, sessions, clock, template) -> None:
    retired = make_template(sessions, 'Старый. ' + CREDITOR_TEXT, active=False)
    letter = make_template(sessions, 'Письмо. ' + CREDITOR_TEXT, channel='email', subject='Тема')
    no_creditor = make_template(sessions, 'Просто текст без кредитора')
    password = make_template(sessions, 'Пароль {{ password }}. ' + CREDITOR_TEXT, kind='account_password')
    with sessions() as session:
        before = session.scalar(select(func.count()).select_from(Mailing))
    for args, kwargs, message in [
        (('', 'sms', template, Segment()), {}, 'Название'),
        (('Канал', 'fax', template, Segment()), {}, 'Канал'),
        (('Старый', 'sms', retired, Segment()), {}, 'действующий шаблон'),
        (('Пароль', 'sms', password, Segment()), {}, 'действующий шаблон'),
        (('Канал шаблона', 'sms', letter, Segment()), {}, 'не для канала SMS'),
        (('Кредитор', 'sms', no_creditor, Segment()), {}, 'наименование кредитора'),
        (
            ('Прошлое', 'sms', template, Segment()),
            {'start_at': clock.now - timedelta(hours=1)},
            'Время запуска',
        ),
        (('Диапазон', 'sms', template, Segment(dpd_min=5, dpd_max=1)), {}, 'Дней просрочки'),
    ]:
        with pytest.raises(ServiceError, match=message):
            mailings.create(supervisor, *args, **kwargs)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Mailing)) == before
    assert [t.id for t in mailings.templates(supervisor, 'sms')].count(password) == 0
