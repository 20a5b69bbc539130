"""Demo data: complete, valid, consistent with itself and the same for the same seed."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from crm.db.demo import DEMO_USERS, is_empty, seed_demo
from crm.db.engine import make_engine, make_sessions
from crm.db.migrate import upgrade
from crm.db.models import (
    Borrower,
    BorrowerPhone,
    Communication,
    CreditApplication,
    Loan,
    Product,
    ProductSale,
    Request,
    RequestEvent,
    User,
    UserGroup,
)
from crm.domain import LOAN_STATUSES, RESULT_CODES, overdue_bucket
from crm.domain.clock import SettableClock
from crm.domain.contact_rules import CallLimits
from crm.domain.formatting import OFFICE_TZ
from crm.domain.identifiers import inn_is_valid, name_key, snils_is_valid
from crm.domain.passwords import verify_password
from crm.domain.requests import OPEN_STATUSES, answer_due
from tests.conftest import TEST_NOW

CLOCK = SettableClock(TEST_NOW)
TODAY = TEST_NOW.date()  # 26.11.2026, in Moscow as in UTC: the day the demo data is counted back from
SEED = 20261126
BORROWERS = 300


def _database(directory: Path, name: str) -> tuple[Engine, sessionmaker[Session]]:
    url = f'sqlite:///{directory / name}'
    upgrade(url)
    engine = make_engine(url)
    return engine, make_sessions(engine)


@dataclass
class Demo:
    sessions: sessionmaker[Session]
    users: list[User]
    borrowers: list[Borrower]
    phones: list[BorrowerPhone]
    loans: list[Loan]
    applications: list[CreditApplication]
    products: list[Product]
    sales: list[ProductSale]
    communications: list[Communication]

    def by_borrower(self, rows: list) -> dict[int, list]:
        grouped: dict[int, list] = defaultdict(list)
        for row in rows:
            grouped[row.borrower_id].append(row)
        return grouped


@pytest.fixture(scope='module')
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    engine, sessions = _database(tmp_path_factory.mktemp('demo'), 'demo.sqlite3')
    assert is_empty(sessions)
    seed_demo(sessions, borrowers=BORROWERS, seed=SEED, clock=CLOCK)
    with sessions() as session:

        def rows(model: type) -> list:
            return list(session.scalars(select(model).order_by(model.id)))

        yield Demo(
            sessions=sessions,
            users=rows(User),
            borrowers=rows(Borrower),
            phones=rows(BorrowerPhone),
            loans=rows(Loan),
            applications=rows(CreditApplication),
            products=rows(Product),
            sales=rows(ProductSale),
            communications=rows(Communication),
        )
    engine.dispose()


def test_users_match_the_spec(demo: Demo) -> None:
    users = {user.login: user for user in demo.users}
    assert set(users) == {'admin', 'supervisor', *(f'operator{n}' for n in range(1, 6))}
    assert users['admin'].role == 'admin'
    assert users['supervisor'].role == 'supervisor'
    for n in range(1, 6):
        operator = users[f'operator{n}']
        assert operator.role == 'operator'
        assert operator.extension == f'10{n}'
        assert operator.email == f'operator{n}@lender.example'
    assert users['admin'].extension is None
    # the supervisor leads the operators' group: «Мониторинг» has someone to show
    (group_id,) = {users[f'operator{n}'].group_id for n in range(1, 6)}
    with demo.sessions() as session:
        assert session.get(UserGroup, group_id).supervisor_id == users['supervisor'].id
    assert all(user.active and re.search('[А-Яа-яЁё]', user.full_name) for user in demo.users)
    assert verify_password('admin', users['admin'].password_hash)
    assert verify_password('supervisor', users['supervisor'].password_hash)
    assert verify_password('operator', users['operator3'].password_hash)
    assert not verify_password('admin', users['operator3'].password_hash)
    assert [(u[0], u[2].value, u[4]) for u in DEMO_USERS] == [
        (user.login, user.role, user.extension) for user in demo.users
    ]


def test_identifiers_are_valid_and_unique(demo: Demo) -> None:
    borrowers = demo.borrowers
    assert len(borrowers) == BORROWERS
    assert all(inn_is_valid(b.inn) and len(b.inn) == 12 for b in borrowers)
    assert all(snils_is_valid(b.snils) for b in borrowers)
    assert all(re.fullmatch(r'\d{10}', b.pin) for b in borrowers)
    assert all(re.fullmatch(r'\d{10}', b.passport) for b in borrowers)
    for column in ('pin', 'passport', 'inn', 'snils'):
        values = [getattr(b, column) for b in borrowers]
        assert len(set(values)) == len(values), column
    phones = [p.phone for p in demo.phones]
    assert len(set(phones)) == len(phones)
    assert all(re.fullmatch(r'79\d{9}', phone) for phone in phones)
    numbers = [loan.number for loan in demo.loans]
    assert len(set(numbers)) == len(numbers)
    assert all(re.fullmatch(r'\d{7}', number) for number in numbers)


def test_borrower_details_are_believable(demo: Demo) -> None:
    phones = demo.by_borrower(demo.phones)
    for borrower in demo.borrowers:
        full = f'{borrower.last_name} {borrower.first_name} {borrower.middle_name}'
        assert borrower.search_name == name_key(full)
        assert 'ё' not in borrower.search_name
        age = (TODAY - borrower.birth_date).days / 365.25
        assert 18 <= age <= 75
        assert borrower.city in borrower.address
        assert re.match(r'\d{6}, ', borrower.address)
        assert re.search(r', \d{2}\.\d{2}\.\d{4}$', borrower.passport_issued)
        assert borrower.employer
        assert borrower.monthly_payment >= 0
        own = phones[borrower.id]
        assert 1 <= len(own) <= 3
        assert own[0].is_primary and own[0].kind == 'mobile'
        assert all(not p.is_primary and p.kind in ('home', 'work') for p in own[1:])
    with_yo = [b for b in demo.borrowers if 'ё' in f'{b.last_name} {b.first_name} {b.middle_name}']
    assert len(with_yo) >= 5
    assert sum(b.email is not None for b in demo.borrowers) > BORROWERS / 2


def test_borrowers_are_spread_over_operators_and_time_zones(demo: Demo) -> None:
    operators = {u.id for u in demo.users if u.role == 'operator'}
    per_operator = Counter(b.assigned_operator_id for b in demo.borrowers)
    assert set(per_operator) == operators
    assert max(per_operator.values()) - min(per_operator.values()) <= 1
    zones = Counter(b.timezone for b in demo.borrowers)
    assert len(zones) >= 8
    assert zones.most_common(1)[0][0] == 'Europe/Moscow'
    for zone in zones:
        ZoneInfo(zone)
    archived = [b for b in demo.borrowers if b.archived]
    assert 0.01 * BORROWERS <= len(archived) <= 0.06 * BORROWERS


def test_every_loan_state_is_present(demo: Demo) -> None:
    def bucket(loan: Loan) -> str:
        if loan.state != 'active':
            return loan.state
        return 'review' if loan.status_code == 1200 else overdue_bucket(loan.days_past_due)

    buckets = Counter(bucket(loan) for loan in demo.loans)
    expected = {overdue_bucket(days) for days in (0, 1, 6, 31, 91)} | {'closed', 'archived', 'review'}
    assert set(buckets) == expected
    assert all(count >= 3 for count in buckets.values()), buckets


def test_loans_are_consistent(demo: Demo) -> None:
    for loan in demo.loans:
        assert loan.status_name == LOAN_STATUSES[loan.status_code]
        assert loan.due_on == loan.issued_on + timedelta(days=loan.term_days)
        assert loan.issued_on < TODAY
        assert Decimal(3000) <= loan.amount <= Decimal(100000) and loan.amount % 1000 == 0
        assert 7 <= loan.term_days <= 365
        assert Decimal(0) < loan.rate <= Decimal(1)
        assert (loan.overdue_amount > 0) == (loan.days_past_due > 0)
        assert loan.overdue_amount <= loan.total_debt
        assert loan.principal_outstanding <= loan.total_debt
        if loan.state == 'active':
            assert loan.closed_on is None
            if loan.status_code == 1200:
                assert loan.total_debt == 0
            elif loan.days_past_due == 0:
                assert loan.status_code in (2000, 2100) and loan.total_debt > 0
            else:
                assert loan.status_code in (3000, 3100, 3200)
                assert loan.status_code != 3200 or loan.days_past_due > 90
        else:
            assert loan.status_code in ((4000, 4100) if loan.state == 'closed' else (5000,))
            assert loan.closed_on is not None and loan.issued_on < loan.closed_on < TODAY
            assert loan.total_debt == loan.principal_outstanding == loan.overdue_amount == 0
            assert loan.days_past_due == 0
    archived = {b.id for b in demo.borrowers if b.archived}
    assert all(loan.state != 'active' for loan in demo.loans if loan.borrower_id in archived)
    per_borrower = demo.by_borrower(demo.loans)
    assert all(1 <= len(per_borrower[b.id]) <= 3 for b in demo.borrowers)


def test_borrower_aggregates_match_loans_and_communications(demo: Demo) -> None:
    loans = demo.by_borrower(demo.loans)
    contacts = demo.by_borrower(demo.communications)
    for borrower in demo.borrowers:
        active = [loan for loan in loans[borrower.id] if loan.state == 'active']
        assert borrower.total_debt == sum((loan.total_debt for loan in active), Decimal(0))
        assert borrower.overdue_amount == sum((loan.overdue_amount for loan in active), Decimal(0))
        assert borrower.days_past_due == max((loan.days_past_due for loan in active), default=0)
        started = [c.started_at for c in contacts[borrower.id]]
        assert borrower.last_contact_at == max(started, default=None)


def test_credit_history_products_and_sales(demo: Demo) -> None:
    applications = demo.by_borrower(demo.applications)
    loans = demo.by_borrower(demo.loans)
    for borrower in demo.borrowers:
        own = applications[borrower.id]
        assert 1 <= len(own) <= 4
        assert {loan.number for loan in loans[borrower.id]} <= {a.number for a in own}
    assert {a.status_code for a in demo.applications} >= {1200, 1300, 1400}
    numbers = [a.number for a in demo.applications]
    assert len(set(numbers)) == len(numbers)
    assert 4 <= len(demo.products) <= 6
    buyers = {sale.borrower_id for sale in demo.sales}
    assert 0.1 * BORROWERS <= len(buyers) <= 0.3 * BORROWERS
    prices = {p.id: p.price for p in demo.products}
    assert all(sale.price == prices[sale.product_id] for sale in demo.sales)


def test_inbound_contacts_of_the_last_weeks_have_their_requests(demo: Demo) -> None:
    with demo.sessions() as session:
        requests = list(session.scalars(select(Request).order_by(Request.id)))
        lines = session.execute(
            select(RequestEvent.request_id, RequestEvent.kind, RequestEvent.communication_id)
        ).all()
    assert requests, 'a fresh demo shows requests'
    statuses = Counter(r.status for r in requests)
    assert set(statuses) == {'new', 'in_progress', 'waiting', 'resolved', 'closed'}
    assert any(r.status == 'new' and r.assignee_id is None for r in requests)  # a queue to take from
    inbound = {c.id: c for c in demo.communications if c.direction == 'in'}
    opened = {request_id: comm for request_id, kind, comm in lines if kind == 'opened'}
    for request in requests:
        first = inbound[opened[request.id]]
        assert first.borrower_id == request.borrower_id
        assert request.due_on == answer_due(request.opened_at.astimezone(OFFICE_TZ).date(), CallLimits())
        assert (request.resolved_at is not None) == (request.status in ('resolved', 'closed'))
    open_per_borrower = Counter(r.borrower_id for r in requests if r.status in OPEN_STATUSES)
    assert max(open_per_borrower.values()) == 1  # the one-open-request rule holds in the demo too


def test_communications_are_plausible(demo: Demo) -> None:
    zones = {b.id: ZoneInfo(b.timezone) for b in demo.borrowers}
    phones = defaultdict(set)
    for phone in demo.phones:
        phones[phone.borrower_id].add(phone.phone)
    channels = Counter(c.channel for c in demo.communications)
    assert set(channels) == {'call_out', 'call_in', 'sms', 'email', 'note'}
    assert channels.most_common(1)[0][0] == 'call_out'
    for c in demo.communications:
        assert c.started_at.date() <= TODAY and c.started_at.date() >= TODAY - timedelta(days=181)
        assert c.direction == ('in' if c.channel == 'call_in' else 'out')
        if c.channel in ('call_in', 'call_out'):
            local_start = c.started_at.astimezone(zones[c.borrower_id])
            local_end = c.ended_at.astimezone(zones[c.borrower_id])
            assert local_start.hour >= 8 and (local_end.hour, local_end.minute) < (22, 0)
            assert c.ended_at - c.started_at == timedelta(seconds=c.duration_s)
            assert (c.result_name, c.reached) == RESULT_CODES[c.result_code]
            assert c.phone in phones[c.borrower_id]
            assert (c.promise_amount is not None) == (c.result_code == 'promise')
            if c.result_code == 'promise':
                assert c.promise_amount > 0 and c.promise_date > c.started_at.date()
        elif c.channel in ('sms', 'email'):
            assert c.body and c.delivery_status in ('delivered', 'failed')
            assert (c.phone in phones[c.borrower_id]) if c.channel == 'sms' else c.phone is None
        else:
            assert c.comment
    assert any(c.delivery_status == 'failed' for c in demo.communications)
    overdue = [b for b in demo.borrowers if b.days_past_due > 0]
    recent = [b for b in overdue if b.last_contact_at.date() >= TODAY - timedelta(days=7)]
    assert len(recent) == len(overdue)


def test_seeding_is_deterministic(demo: Demo, tmp_path: Path) -> None:
    engine, sessions = _database(tmp_path, 'again.sqlite3')
    try:
        seed_demo(sessions, borrowers=BORROWERS, seed=SEED, clock=CLOCK)
        with sessions() as session:
            again = session.execute(
                select(Borrower.search_name, Borrower.pin, Borrower.passport).order_by(Borrower.id)
            ).all()
            again_phones = list(session.scalars(select(BorrowerPhone.phone).order_by(BorrowerPhone.id)))
            again_loans = session.execute(select(Loan.number, Loan.total_debt).order_by(Loan.id)).all()
            again_contacts = list(
                session.scalars(select(Communication.started_at).order_by(Communication.id))
            )
    finally:
        engine.dispose()
    assert again == [(b.search_name, b.pin, b.passport) for b in demo.borrowers]
    assert again_phones == [p.phone for p in demo.phones]
    assert again_loans == [(loan.number, loan.total_debt) for loan in demo.loans]
    assert again_contacts == [c.started_at for c in demo.communications]


def test_another_seed_gives_other_people(tmp_path: Path, demo: Demo) -> None:
    engine, sessions = _database(tmp_path, 'other.sqlite3')
    try:
        seed_demo(sessions, borrowers=20, seed=SEED + 1, clock=CLOCK)
        with sessions() as session:
            names = list(session.scalars(select(Borrower.search_name).order_by(Borrower.id)))
    finally:
        engine.dispose()
    assert names != [b.search_name for b in demo.borrowers[:20]]


def test_seeding_a_non_empty_database_raises(demo: Demo) -> None:
    assert not is_empty(demo.sessions)
    with pytest.raises(RuntimeError):
        seed_demo(demo.sessions, borrowers=5, seed=SEED, clock=CLOCK)
    with demo.sessions() as session:
        assert len(list(session.scalars(select(Borrower.id)))) == BORROWERS


def test_prepare_seeds_as_of_the_day_the_settings_clock_starts(tmp_path: Path) -> None:
    """`crm.manage prepare` with CRM_CLOCK_START: a training database consistent with the app's clock."""
    from crm.config import Settings
    from crm.manage import prepare

    url = f'sqlite:///{tmp_path / "training.sqlite3"}'
    start = '2026-03-02T00:30:00+03:00'  # Monday 02.03 in Moscow, still Sunday 01.03 in UTC
    prepare(Settings(database_url=url, demo=True, clock_start=start), borrowers=5)
    engine = make_engine(url)
    try:
        with make_sessions(engine)() as session:
            created = set(session.scalars(select(User.created_at)))
            issued = list(session.scalars(select(Loan.issued_on)))
    finally:
        engine.dispose()
    assert created == {datetime(2025, 1, 26, 6, 0, tzinfo=UTC)}  # the office day 02.03.2026 less 400 days
    assert issued and max(issued) < date(2026, 3, 2)
