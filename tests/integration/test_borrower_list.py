"""The borrower list: scope by role, server-side pages, every sort key, the overdue filter."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import Borrower, User
from crm.domain.errors import AccessDenied
from crm.services.auth import to_actor
from crm.services.borrowers import SORT_COLUMNS, BorrowerService, ListQuery


@pytest.fixture(scope='module')
def service(sessions: sessionmaker[Session]) -> BorrowerService:
    return BorrowerService(sessions)


def actor(sessions, login: str):
    with sessions() as session:
        return to_actor(session.scalar(select(User).where(User.login == login)))


def count(sessions, *where) -> int:
    with sessions() as session:
        return session.scalar(
            select(func.count()).select_from(Borrower).where(Borrower.archived.is_(False), *where)
        )


def test_operator_sees_only_their_own(service, sessions) -> None:
    me = actor(sessions, 'operator1')
    page = service.list_borrowers(me, ListQuery(per_page=200))
    assert page.total == count(sessions, Borrower.assigned_operator_id == me.id) > 0
    assert {row.operator_login for row in page.items} == {'operator1'}
    assert not any(row.archived for row in page.items)


def test_operator_cannot_ask_for_another_operators_list(service, sessions) -> None:
    me, other = actor(sessions, 'operator1'), actor(sessions, 'operator2')
    with pytest.raises(AccessDenied):
        service.list_borrowers(me, ListQuery(operator_id=other.id))
    with pytest.raises(AccessDenied):
        service.operators(me)


@pytest.mark.parametrize('login', ['supervisor', 'admin'])
def test_supervisor_and_admin_see_everyone_or_filter_by_operator(service, sessions, login: str) -> None:
    boss, op2 = actor(sessions, login), actor(sessions, 'operator2')
    assert service.list_borrowers(boss).total == count(sessions)
    page = service.list_borrowers(boss, ListQuery(operator_id=op2.id, per_page=200))
    assert page.total == count(sessions, Borrower.assigned_operator_id == op2.id)
    assert {row.operator_login for row in page.items} == {'operator2'}
    logins = [o.login for o in service.operators(boss)]
    assert logins == sorted(logins) and {f'operator{i}' for i in range(1, 6)} <= set(logins)
    assert 'supervisor' not in logins and 'admin' not in logins


def test_pages_cover_the_list_exactly_once(service, sessions) -> None:
    me = actor(sessions, 'operator2')
    first = service.list_borrowers(me, ListQuery(per_page=25))
    seen: list[int] = []
    for number in range(1, first.pages + 1):
        page = service.list_borrowers(me, ListQuery(per_page=25, page=number))
        assert len(page.items) <= 25
        seen += [row.id for row in page.items]
    assert len(seen) == len(set(seen)) == first.total


@pytest.mark.parametrize('sort', sorted(SORT_COLUMNS))
@pytest.mark.parametrize('descending', [True, False])
def test_every_sort_key_orders_the_rows(service, sessions, sort: str, descending: bool) -> None:
    me = actor(sessions, 'operator3')
    rows = service.list_borrowers(me, ListQuery(sort=sort, descending=descending, per_page=200)).items
    key = {
        'name': lambda r: r.full_name.lower().replace('ё', 'е'),
        'total_debt': lambda r: r.total_debt,
        'overdue_amount': lambda r: r.overdue_amount,
        'days_past_due': lambda r: r.days_past_due,
    }.get(sort)
    if key is None:  # last contact: nulls last in both directions
        values = [r.last_contact_at for r in rows]
        present = [x for x in values if x is not None]
        assert values[: len(present)] == sorted(present, reverse=descending)
        return
    values = [key(r) for r in rows]
    assert values == sorted(values, reverse=descending)


def test_overdue_filter(service, sessions) -> None:
    me = actor(sessions, 'operator4')
    page = service.list_borrowers(me, ListQuery(overdue_only=True, per_page=200))
    assert (
        page.total == count(sessions, Borrower.assigned_operator_id == me.id, Borrower.days_past_due > 0) > 0
    )
    assert all(row.days_past_due > 0 and row.overdue_amount > 0 for row in page.items)


def test_unknown_sort_is_refused(service, sessions) -> None:
    with pytest.raises(ValueError):
        service.list_borrowers(actor(sessions, 'admin'), ListQuery(sort='password_hash'))
