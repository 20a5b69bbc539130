"""«Обращения»: search, filters, every sort, paging, the capped count, operators' visibility and the CSV,
on rows written straight into the database (SQLite here, PostgreSQL under CI).

Each test marks its requests with a word of its own in ``search_text`` and searches by it, so rows other
tests wrote never get in."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import Borrower, Request, RequestTopic
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.clock import SettableClock
from crm.domain.contact_rules import CallLimits
from crm.domain.requests import add_working_days
from crm.services import request_views as rv
from crm.services.auth import to_actor
from crm.services.request_views import RequestFilters, RequestViews
from tests.conftest import TEST_NOW
from tests.factories import make_borrower, make_user, unique, unique_phone

TODAY = date(2026, 11, 26)  # TEST_NOW in Moscow
LIMITS = CallLimits()


@pytest.fixture
def views(sessions: sessionmaker[Session]) -> RequestViews:
    return RequestViews(sessions, limits=LIMITS, clock=SettableClock(TEST_NOW))


@pytest.fixture
def marker() -> str:
    return 'mark' + uuid.uuid4().hex[:10].translate(str.maketrans('0123456789', 'ghijklmnop'))


@pytest.fixture
def supervisor(sessions) -> Actor:
    return to_actor(make_user(sessions, role=Role.SUPERVISOR))


def add(
    sessions: sessionmaker[Session],
    borrower: Borrower,
    marker: str,
    *,
    status: str = 'new',
    channel: str = 'call',
    topic: str | None = 'payment',
    assignee: int | None = None,
    opened: datetime = TEST_NOW - timedelta(days=1),
    updated: datetime | None = None,
    due: date | None = None,
    subject: str = 'Вопрос по платежу',
    text: str = '',
    origin: str | None = None,
) -> int:
    """One request as the service would leave it, with what search reads in ``search_text``."""
    name = f'{borrower.last_name} {borrower.first_name} {borrower.middle_name or ""}'
    phones = ' '.join(p.phone for p in borrower.phones)
    with sessions.begin() as session:
        request = Request(
            borrower_id=borrower.id,
            origin=origin or f'contact{unique()}'[:16],  # several open ones per borrower in these tests
            channel=channel,
            topic_code=topic,
            status=status,
            assignee_id=assignee,
            subject=subject,
            text=text,
            search_text=f'{subject} {text} {name} {borrower.pin} {phones} {marker}',
            opened_at=opened,
            updated_at=updated or opened,
            due_on=due or add_working_days(opened.date(), 15, LIMITS),
        )
        session.add(request)
        session.flush()
        return request.id


def ids(page: rv.RequestPage) -> list[int]:
    return [row.id for row in page.rows]


def test_search_finds_text_names_pins_and_phones(sessions, views, supervisor, marker) -> None:
    phone = unique_phone()
    petrov = make_borrower(sessions, last='Петровский', first='Игорь', phones=(phone,))
    sidorova = make_borrower(sessions, last='Сидорова', first='Анна')
    complaint = add(sessions, petrov, marker, subject='Жалоба на звонки', text='Звонят ночью родственникам')
    refund = add(sessions, sidorova, marker, subject='Возврат переплаты', text='Оплатила дважды')

    def found(query: str) -> set[int]:
        return set(ids(views.page(supervisor, RequestFilters(query=f'{query} {marker}'))))

    assert found('родственникам') == {complaint}
    assert found('ЖАЛОБА') == {complaint}
    assert found('петровский') == {complaint}
    assert found('Сидорова анна') == {refund}
    assert found('Сидорова Игорь') == set()
    assert {complaint} == set(ids(views.page(supervisor, RequestFilters(query=petrov.pin))))
    typed = f'+7 ({phone[1:4]}) {phone[4:7]}-{phone[7:9]}-{phone[9:]}'
    assert {complaint} == set(ids(views.page(supervisor, RequestFilters(query=typed))))
    assert {complaint} == set(ids(views.page(supervisor, RequestFilters(query='8' + phone[1:]))))
    assert found(marker) == {complaint, refund}
    assert views.page(supervisor, RequestFilters(query='%_%')).total == 0  # no words: nothing, not all


def test_filters(sessions, views, supervisor, marker) -> None:
    operator = make_user(sessions, role=Role.OPERATOR)
    borrower = make_borrower(sessions)
    early = TEST_NOW - timedelta(days=40)
    new = add(sessions, borrower, marker, channel='chat', topic='complaint')
    taken = add(sessions, borrower, marker, status='in_progress', assignee=operator.id, channel='email')
    waiting = add(sessions, borrower, marker, status='waiting', assignee=operator.id, opened=early)
    done = add(sessions, borrower, marker, status='closed', assignee=operator.id, opened=early)

    def found(**values) -> set[int]:
        return set(ids(views.page(supervisor, RequestFilters(query=marker, **values))))

    assert found() == {new, taken, waiting, done}
    assert found(statuses=('new', 'waiting')) == {new, waiting}
    assert found(channel='chat') == {new}
    assert found(topic='complaint') == {new}
    assert found(assignee_id=operator.id) == {taken, waiting, done}
    assert found(unassigned=True) == {new}
    assert found(opened_from=TODAY - timedelta(days=3)) == {new, taken}
    assert found(opened_to=TODAY - timedelta(days=30)) == {waiting, done}
    assert found(opened_from=TODAY - timedelta(days=41), opened_to=TODAY - timedelta(days=39)) == {
        waiting,
        done,
    }


def test_deadline_filter_and_days_left(sessions, views, supervisor, marker) -> None:
    borrower = make_borrower(sessions)
    overdue = add(sessions, borrower, marker, due=TODAY - timedelta(days=1))
    last_day = add(sessions, borrower, marker, due=TODAY)
    warning = add(sessions, borrower, marker, due=add_working_days(TODAY, 5, LIMITS))
    in_time = add(sessions, borrower, marker, due=add_working_days(TODAY, 6, LIMITS))
    closed_late = add(sessions, borrower, marker, status='closed', due=TODAY - timedelta(days=30))

    def found(kind: str) -> set[int]:
        return set(ids(views.page(supervisor, RequestFilters(query=marker, deadline=kind))))

    assert found('overdue') == {overdue}
    assert found('warning') == {last_day, warning}
    assert found('on_time') == {in_time}
    rows = {row.id: row for row in views.page(supervisor, RequestFilters(query=marker)).rows}
    assert rows[overdue].deadline is not None and rows[overdue].deadline.overdue
    assert rows[last_day].deadline is not None and rows[last_day].deadline.label == 'последний день'
    assert rows[warning].deadline is not None and rows[warning].deadline.working_days_left == 5
    assert rows[warning].deadline.warning and not rows[warning].deadline.overdue
    assert rows[in_time].deadline is not None and not rows[in_time].deadline.warning
    assert rows[closed_late].deadline is None


def test_every_sort_column_both_ways(sessions, views, supervisor, marker) -> None:
    first, second = make_user(sessions), make_user(sessions)
    with sessions.begin() as session:
        for code, name in ((f'{marker}a', 'Яблоко'), (f'{marker}b', 'Арбуз')):
            session.add(RequestTopic(code=code[:32], name=f'{name} {marker}', active=True, position=99))
    topic_a, topic_b = f'{marker}a'[:32], f'{marker}b'[:32]
    ann = make_borrower(sessions, last='Аннина', first='Ольга')
    bor = make_borrower(sessions, last='Борисов', first='Олег')
    base, hour, day = TEST_NOW - timedelta(days=10), timedelta(hours=1), timedelta(days=1)
    made = [
        add(sessions, bor, marker, topic=topic_a, channel='call', status='waiting', assignee=first.id,
            opened=base, updated=base + 5 * hour, due=TODAY + 3 * day),
        add(sessions, ann, marker, topic=topic_b, channel='email', status='new',
            opened=base + hour, updated=base + hour, due=TODAY + 9 * day),
        add(sessions, bor, marker, topic=None, channel='chat', status='closed', assignee=second.id,
            opened=base + 2 * hour, updated=base + 9 * hour, due=TODAY + day),
        add(sessions, ann, marker, topic=topic_a, channel='manual', status='in_progress', assignee=first.id,
            opened=base + 3 * hour, updated=base + 3 * hour, due=TODAY + 5 * day),
    ]  # fmt: skip
    a, b, c, d = made
    groups = {first.id: [a, d], second.id: [c]}
    by_name = sorted([(first.full_name, first.id), (second.full_name, second.id)])
    by_assignee = [i for _, uid in by_name for i in groups[uid]] + [b]  # the unassigned last
    expected = {
        'number': [a, b, c, d],
        'opened_at': [a, b, c, d],
        'updated_at': [b, d, a, c],
        'due_on': [c, a, d, b],
        'borrower': sorted([b, d]) + sorted([a, c]),  # Аннина before Борисов, then by number
        'topic': [b, a, d, c],  # Арбуз, Яблоко (by number), none last
        'channel': [b, d, a, c],  # E-mail, Вручную, Звонок, Чат by label
        'status': [b, d, a, c],  # Новое, В работе, Ожидает клиента, Закрыто
        'assignee': by_assignee,
    }
    for sort, ascending in expected.items():
        got = ids(views.page(supervisor, RequestFilters(query=marker), sort, False))
        assert got == ascending, sort
        got = ids(views.page(supervisor, RequestFilters(query=marker), sort, True))
        assert got == list(reversed(ascending)), f'{sort} descending'


def test_paging_and_the_capped_count(sessions, views, supervisor, marker, monkeypatch) -> None:
    borrower = make_borrower(sessions)
    made = [add(sessions, borrower, marker, opened=TEST_NOW - timedelta(hours=n)) for n in range(5)]
    pages = [views.page(supervisor, RequestFilters(query=marker), 'number', False, p, 2) for p in (1, 2, 3)]
    assert [ids(p) for p in pages] == [made[:2], made[2:4], made[4:]]
    assert {p.total for p in pages} == {5} and not pages[0].total_capped
    assert pages[0].total_label == '5'
    monkeypatch.setattr(rv, 'TEXT_COUNT_CAP', 3)  # the marker makes it a text search
    capped = views.page(supervisor, RequestFilters(query=marker), 'number', False, 1, 2)
    assert capped.total_capped and capped.total == 4 and capped.total_label == 'более 3'
    assert ids(capped) == made[:2]


def test_a_list_without_a_text_search_is_counted_to_ten_thousand(sessions, views, supervisor, monkeypatch):
    code = f't{unique()}'
    with sessions.begin() as session:
        session.add(RequestTopic(code=code, name=f'Тема {code}', active=True, position=99))
    borrower = make_borrower(sessions)
    for n in range(5):
        add(sessions, borrower, code, topic=code, opened=TEST_NOW - timedelta(hours=n))
    monkeypatch.setattr(rv, 'COUNT_CAP', 3)
    page = views.page(supervisor, RequestFilters(topic=code), per_page=2)
    assert page.total_capped and page.total == 4 and page.total_label == 'более 3' and len(page.rows) == 2
    assert views.page(supervisor, RequestFilters(topic=code, query=code)).total_label == '5'


def test_operators_see_their_own_and_the_queue(sessions, views, supervisor, marker) -> None:
    mine, other = make_user(sessions), make_user(sessions)
    me = to_actor(mine)
    borrower = make_borrower(sessions)
    own = add(sessions, borrower, marker, status='in_progress', assignee=mine.id)
    queued = add(sessions, borrower, marker)
    theirs = add(sessions, borrower, marker, status='in_progress', assignee=other.id)

    def found(actor: Actor, **values) -> set[int]:
        return set(ids(views.page(actor, RequestFilters(query=marker, **values))))

    assert found(me) == {own, queued}
    assert found(me, assignee_id=mine.id) == {own}
    assert found(me, unassigned=True) == {queued}
    assert found(me, assignee_id=other.id) == set()  # asking for another's is not seeing them
    assert found(supervisor) == {own, queued, theirs}
    lines = views.csv(me, RequestFilters(query=marker)).data.decode('utf-8-sig').splitlines()
    assert len(lines) == 3 and not any(line.startswith(f'{theirs};') for line in lines)


def test_csv_is_the_filtered_list_with_a_bom_and_a_note_when_cut(
    sessions, views, supervisor, marker, monkeypatch
) -> None:
    borrower = make_borrower(sessions, last='Кузнецова', first='Мария')
    made = [add(sessions, borrower, marker, subject=f'Тема; с "кавычками" {n}') for n in range(3)]
    add(sessions, borrower, marker, status='closed')
    export = views.csv(supervisor, RequestFilters(query=marker, statuses=('new',)), 'number', False)
    assert export.data.startswith('\ufeff'.encode()) and not export.cut and export.rows == 3
    rows = list(csv.reader(io.StringIO(export.data.decode('utf-8-sig')), delimiter=';'))
    assert rows[0] == list(rv.CSV_HEADER)
    assert [int(row[0]) for row in rows[1:]] == made
    assert rows[1][2] == borrower.pin and rows[1][3].startswith('Кузнецова Мария')
    assert rows[1][6] == 'Новое' and rows[1][11] == 'Тема; с "кавычками" 0'
    monkeypatch.setattr(rv, 'CSV_LIMIT', 2)
    cut = views.csv(supervisor, RequestFilters(query=marker, statuses=('new',)), 'number', False)
    lines = list(csv.reader(io.StringIO(cut.data.decode('utf-8-sig')), delimiter=';'))
    assert cut.cut and cut.rows == 2 and len(lines) == 4
    assert lines[-1][0].startswith('Выгружены первые 2 строк')


def test_a_borrower_by_pin(sessions, views, supervisor) -> None:
    borrower = make_borrower(sessions, last='Орлов', first='Пётр')
    assert views.borrower_by_pin(supervisor, f' {borrower.pin} ').id == borrower.id
    with pytest.raises(rv.NotFound):
        views.borrower_by_pin(supervisor, '0000')
