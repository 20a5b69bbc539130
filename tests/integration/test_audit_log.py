"""«Журнал действий»: filters, paging, the capped count, admins only, the CSV, and where an entry came from
(the address of a page's browser and of an API call), on the shared test database.

Each test's entries are written for users and borrowers of its own, and every query filters by them, so
entries other tests wrote never get in."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from crm import bootstrap
from crm.api import routes
from crm.config import Settings
from crm.db.models import AuditEntry, Borrower, User
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.errors import AccessDenied, NotFound
from crm.domain.origin import acting_from
from crm.integrations.bus import InProcessBus
from crm.services import audit, audit_views
from crm.services.audit_views import AuditFilters, AuditViews
from crm.services.auth import to_actor
from tests.conftest import TEST_NOW
from tests.factories import make_borrower, make_user, unique_phone

TOKEN = 'audit-log-api-token'
TODAY = date(2026, 11, 26)  # TEST_NOW in Moscow


@pytest.fixture
def views(sessions: sessionmaker[Session]) -> AuditViews:
    return AuditViews(sessions)


@pytest.fixture
def admin(sessions) -> Actor:
    return to_actor(make_user(sessions, role=Role.ADMIN))


def add(
    sessions: sessionmaker[Session],
    user: User | None,
    action: str,
    *,
    at: datetime = TEST_NOW,
    borrower: Borrower | None = None,
    address: str | None = None,
    **details: object,
) -> int:
    with sessions.begin() as session:
        return int(
            session.execute(
                insert(AuditEntry).returning(AuditEntry.id),
                {
                    'at': at,
                    'user_id': user.id if user else None,
                    'action': action,
                    'borrower_id': borrower.id if borrower else None,
                    'details': json.dumps(details, ensure_ascii=False) if details else None,
                    'address': address,
                },
            ).scalar_one()
        )


def ids(views: AuditViews, admin: Actor, **filters: object) -> list[int]:
    return [row.id for row in views.page(admin, AuditFilters(**filters), per_page=200).rows]  # type: ignore[arg-type]


def test_filters_by_user_borrower_action_and_period_newest_first(sessions, views, admin) -> None:
    alice, bob = make_user(sessions), make_user(sessions)
    first, second = make_borrower(sessions), make_borrower(sessions)
    view = add(sessions, alice, 'card.view', borrower=first, at=TEST_NOW - timedelta(hours=1))
    login = add(sessions, alice, 'login', at=TEST_NOW - timedelta(hours=2))
    failed = add(sessions, alice, 'login.failed', at=TEST_NOW - timedelta(days=2), login='alice')
    other = add(sessions, bob, 'card.view', borrower=second, at=TEST_NOW - timedelta(minutes=5))
    bureau = add(sessions, bob, 'bureau.request', borrower=first, at=TEST_NOW - timedelta(days=1))

    assert ids(views, admin, user_id=alice.id) == [view, login, failed]
    assert ids(views, admin, borrower=first.pin) == [view, bureau]
    assert ids(views, admin, borrower=str(first.id)) == [view, bureau]  # the number in the CRM
    assert ids(views, admin, user_id=alice.id, action='login') == [login, failed]  # the group
    assert ids(views, admin, user_id=alice.id, action='login.failed') == [failed]
    assert ids(views, admin, user_id=bob.id, action='card.view') == [other]
    assert ids(views, admin, borrower=first.pin, user_id=bob.id) == [bureau]
    # the office's calendar: TEST_NOW - 1 day is 25.11 in Moscow; «по 25.11» ends at its midnight
    assert ids(views, admin, user_id=bob.id, date_to=TODAY - timedelta(days=1)) == [bureau]
    assert ids(views, admin, user_id=alice.id, date_from=TODAY, date_to=TODAY) == [view, login]
    assert ids(views, admin, borrower=first.pin, action='login') == []


def test_a_row_carries_names_label_readable_details_and_address(sessions, views, admin) -> None:
    user, borrower = make_user(sessions), make_borrower(sessions, last='Журналов', first='Иван')
    add(sessions, user, 'login.lockout', borrower=borrower, address='10.1.2.3', minutes=15, cut=True)
    (row,) = views.page(admin, AuditFilters(user_id=user.id)).rows
    assert row.user_name == user.full_name and row.action_label == 'Блокировка входа'
    assert row.borrower_name == 'Журналов Иван Тестович' and row.borrower_pin == borrower.pin
    assert row.details == 'минут: 15; обрезано: да' and row.address == '10.1.2.3'


def test_pages_in_order_and_the_count_is_capped(sessions, views, admin, monkeypatch) -> None:
    user = make_user(sessions)
    actions = ['login', 'card.view', 'login.failed', 'logout', 'login', 'login.locked', 'login']
    written = [
        add(sessions, user, action, at=TEST_NOW - timedelta(minutes=n)) for n, action in enumerate(actions)
    ]
    pages = [views.page(admin, AuditFilters(user_id=user.id), page=n, per_page=3) for n in (1, 2, 3)]
    assert [row.id for p in pages for row in p.rows] == written
    assert [p.total for p in pages] == [7, 7, 7] and not pages[0].total_capped
    logins = [i for i, action in zip(written, actions, strict=True) if action.startswith('login')]
    merged = [
        views.page(admin, AuditFilters(user_id=user.id, action='login'), page=n, per_page=2)
        for n in (1, 2, 3)
    ]
    assert [row.id for p in merged for row in p.rows] == logins and merged[0].total == 5
    monkeypatch.setattr(audit_views, 'COUNT_CAP', 4)
    capped = views.page(admin, AuditFilters(user_id=user.id), page=1, per_page=2)
    assert capped.total == 5 and capped.total_capped and capped.total_label == 'более 4'
    assert views.page(admin, AuditFilters(user_id=user.id), page=99, per_page=2).page == 3  # not past the cap


def test_only_administrators_see_the_log(sessions, views) -> None:
    for role in (Role.OPERATOR, Role.SUPERVISOR):
        actor = to_actor(make_user(sessions, role=role))
        for call in (views.page, views.csv, views.users):
            with pytest.raises(AccessDenied):
                call(actor)


def test_an_unknown_borrower_is_said_so(views, admin) -> None:
    with pytest.raises(NotFound, match='PIN'):
        views.page(admin, AuditFilters(borrower='0000000000000000000'))


def test_csv_is_excel_ready_bounded_and_itself_audited(sessions, views, admin, monkeypatch) -> None:
    user, borrower = make_user(sessions), make_borrower(sessions)
    add(
        sessions,
        user,
        'card.view',
        borrower=borrower,
        address='192.0.2.7',
        at=TEST_NOW - timedelta(minutes=1),
    )
    add(sessions, user, 'requests.export', rows=3, at=TEST_NOW - timedelta(minutes=2))
    export = views.csv(admin, AuditFilters(user_id=user.id))
    assert export.data.startswith('\ufeff'.encode()) and (export.rows, export.cut) == (2, False)
    lines = list(csv.reader(io.StringIO(export.data.decode('utf-8-sig')), delimiter=';'))
    assert lines[0] == list(audit_views.CSV_HEADER)
    assert lines[1][1:] == [
        user.full_name,
        'Просмотр карточки',
        'card.view',
        'Тестов Тест Тестович',
        borrower.pin,
        '',
        '192.0.2.7',
    ]
    assert lines[2][2:4] == ['Экспорт обращений', 'requests.export'] and lines[2][6] == 'строк: 3'
    (entry,) = views.page(admin, AuditFilters(user_id=admin.id, action='audit.export')).rows
    assert entry.action_label == 'Экспорт журнала действий' and 'строк: 2' in entry.details
    monkeypatch.setattr(audit_views, 'CSV_LIMIT', 1)
    cut = views.csv(admin, AuditFilters(user_id=user.id))
    text = cut.data.decode('utf-8-sig').splitlines()
    assert cut.cut and cut.rows == 1 and len(text) == 3 and text[-1].startswith('Выгружены первые 1 строк')


def test_record_writes_the_address_it_acts_from(sessions) -> None:
    user = make_user(sessions)
    with sessions.begin() as session, acting_from('203.0.113.9'):
        audit.record(session, 'login', user_id=user.id)
    with sessions.begin() as session:
        audit.record(session, 'logout', user_id=user.id)  # a worker's: from nowhere
    with sessions() as session:
        found = session.execute(
            select(AuditEntry.action, AuditEntry.address)
            .where(AuditEntry.user_id == user.id)
            .order_by(AuditEntry.id)
        ).all()
    assert [tuple(row) for row in found] == [('login', '203.0.113.9'), ('logout', None)]


@pytest.fixture
def api(engine, database_url, clock) -> Iterator[TestClient]:
    services = bootstrap.build(
        Settings(database_url=database_url, api_token=TOKEN), engine=engine, bus=InProcessBus(), clock=clock
    ).services
    app = FastAPI()
    routes.install(app, services)
    with TestClient(app, client=('198.51.100.4', 5555)) as client:
        yield client


def test_an_api_call_is_audited_with_its_client_address(api, sessions) -> None:
    borrower = make_borrower(sessions, phones=(unique_phone(),), overdue=Decimal('5200'), days_past_due=12)
    body = {
        'channel': 'sms',
        'text': f'Просрочка по займу. {Settings.creditor_name}, {Settings.creditor_phone}',
    }
    response = api.post(
        f'/api/v1/borrowers/{borrower.pin}/messages', json=body, headers={'Authorization': f'Bearer {TOKEN}'}
    )
    assert response.status_code == 202, response.text
    with sessions() as session:
        address = session.scalar(
            select(AuditEntry.address).where(
                AuditEntry.borrower_id == borrower.id, AuditEntry.action == 'message.sms'
            )
        )
    assert address == '198.51.100.4'
