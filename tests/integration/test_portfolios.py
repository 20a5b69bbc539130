"""«Портфель»: assign by ids or a segment, distribute evenly or by load, hand a leaving operator's borrowers
over; one audit entry per operation, a trail row per moved borrower; administrators only."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from crm.db.models import AuditEntry, Borrower, PortfolioMove
from crm.domain import Role
from crm.domain.errors import AccessDenied, ServiceError
from crm.services.auth import to_actor
from crm.services.portfolios import UNASSIGNED, Mode
from crm.services.segments import Segment
from tests.factories import make_borrower, make_user, unique


@pytest.fixture
def portfolios(system):
    return system.services.portfolios


@pytest.fixture
def admin(sessions):
    return to_actor(make_user(sessions, role=Role.ADMIN))


def operators(sessions, n: int) -> list[int]:
    return [make_user(sessions, role=Role.OPERATOR).id for _ in range(n)]


def borrowers_in_city(sessions, city: str, n: int, **kwargs) -> list[int]:
    """Borrowers of a city of this test's own (the segment picks only them)."""
    ids = [make_borrower(sessions, **kwargs).id for _ in range(n)]
    with sessions.begin() as session:
        session.execute(update(Borrower).where(Borrower.id.in_(ids)).values(city=city))
    return ids


def owners(sessions, ids: list[int]) -> dict[int, int | None]:
    with sessions() as session:
        rows = session.execute(select(Borrower.id, Borrower.assigned_operator_id).where(Borrower.id.in_(ids)))
        return {id_: owner for id_, owner in rows}


def audit_entries(sessions, operation_id: str) -> list[tuple[str, dict]]:
    with sessions() as session:
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.details).where(AuditEntry.details.contains(operation_id))
        ).all()
    return [(action, json.loads(details)) for action, details in rows]


def test_distribute_evenly_gives_each_operator_a_share_and_audits_once(portfolios, sessions, admin) -> None:
    city = f'Город-{unique()}'
    ids = borrowers_in_city(sessions, city, 10)
    targets = operators(sessions, 3)
    segment = Segment(cities=(city,))
    assert portfolios.count(admin, segment) == 10

    result = portfolios.distribute(admin, segment, targets, Mode.EVEN)

    assert result.selected == result.moved == 10
    assert sorted(Counter(owners(sessions, ids).values()).values()) == [3, 3, 4]
    assert dict(result.per_operator) == dict(Counter(owners(sessions, ids).values()))
    entries = audit_entries(sessions, result.operation_id)
    assert len(entries) == 1
    action, details = entries[0]
    assert action == 'portfolio.distribute' and details['mode'] == 'even' and details['moved'] == 10
    assert city in details['segment']
    with sessions() as session:
        moves = session.scalars(
            select(PortfolioMove).where(PortfolioMove.operation_id == result.operation_id)
        )
        assert sorted(m.borrower_id for m in moves) == sorted(ids)


def test_distribute_by_load_fills_the_least_loaded_first(portfolios, sessions, admin) -> None:
    city = f'Город-{unique()}'
    busy, free = operators(sessions, 2)
    for _ in range(4):  # busy already works four overdue borrowers
        make_borrower(sessions, operator_id=busy, overdue=Decimal(100), days_past_due=10)
    ids = borrowers_in_city(sessions, city, 6, overdue=Decimal(100), days_past_due=5)

    result = portfolios.distribute(admin, Segment(cities=(city,)), [busy, free], Mode.LOAD)

    # free takes four to catch up, then the two alternate: 5 and 1
    assert dict(result.per_operator) == {busy: 1, free: 5}
    assert Counter(owners(sessions, ids).values()) == {busy: 1, free: 5}
    loads = {row.id: row for row in portfolios.operators(admin)}
    assert loads[busy].overdue == loads[free].overdue == 5


def test_assign_by_ids_and_by_segment_of_one_operator(portfolios, sessions, admin) -> None:
    first, second = operators(sessions, 2)
    city = f'Город-{unique()}'
    ids = borrowers_in_city(sessions, city, 3)
    result = portfolios.assign(admin, first, borrower_ids=ids[:2])
    assert result.moved == 2 and owners(sessions, ids) == {ids[0]: first, ids[1]: first, ids[2]: None}

    segment = Segment(cities=(city,))
    assert portfolios.count(admin, segment, owner=UNASSIGNED) == 1
    again = portfolios.assign(admin, second, segment=segment, owner=first)
    assert again.selected == 2 and owners(sessions, ids) == {ids[0]: second, ids[1]: second, ids[2]: None}
    ((action, details),) = audit_entries(sessions, again.operation_id)
    assert action == 'portfolio.assign' and details['owner'] == first


def test_a_leaving_operators_borrowers_go_evenly_to_the_others(portfolios, sessions, admin) -> None:
    leaving, *others = operators(sessions, 3)
    ids = [make_borrower(sessions, operator_id=leaving).id for _ in range(5)]
    ids.append(make_borrower(sessions, operator_id=leaving, archived=True).id)

    result = portfolios.hand_over(admin, leaving, others)

    assert result.moved == 6 and leaving not in owners(sessions, ids).values()
    assert sorted(Counter(owners(sessions, ids).values()).values()) == [3, 3]
    ((action, details),) = audit_entries(sessions, result.operation_id)
    assert action == 'portfolio.hand_over' and details['leaving_id'] == leaving
    with sessions() as session:
        trail = session.scalars(
            select(PortfolioMove.from_operator_id).where(PortfolioMove.operation_id == result.operation_id)
        ).all()
    assert trail == [leaving] * 6


def test_refusals_write_nothing(portfolios, sessions, admin) -> None:
    leaving, other = operators(sessions, 2)
    ids = [make_borrower(sessions, operator_id=leaving).id for _ in range(2)]
    supervisor = to_actor(make_user(sessions, role=Role.SUPERVISOR))
    operator = to_actor(make_user(sessions, role=Role.OPERATOR))
    for actor in (supervisor, operator):
        with pytest.raises(AccessDenied):
            portfolios.hand_over(actor, leaving, [other])
        with pytest.raises(AccessDenied):
            portfolios.distribute(actor, Segment(), [other], Mode.EVEN)
    with pytest.raises(ServiceError, match='действующим операторам'):
        portfolios.hand_over(admin, leaving, [other, supervisor.id])
    with pytest.raises(ServiceError, match='другим'):
        portfolios.hand_over(admin, leaving, [leaving, other])
    assert set(owners(sessions, ids).values()) == {leaving}
