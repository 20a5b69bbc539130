"""«Мониторинг»'s figures against hand-computed ones on a fixture day, the queue status event, and the
database work of a tick: the same statements for 1 and for 20 open dashboards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, select

from crm.db.models import (
    AuditEntry,
    Call,
    Communication,
    Loan,
    OperatorStateChange,
    OperatorStateRow,
    OutboxMessage,
    Payment,
    Promise,
    User,
    UserGroup,
)
from crm.domain import Role
from crm.domain.clock import SettableClock
from crm.domain.operator_states import OperatorState
from crm.integrations.bus import Delivery
from crm.integrations.pbx_simulator import PbxSimulator
from crm.pages.dashboard_hub import DashboardHub
from crm.pages.live import LiveHub
from crm.services.auth import to_actor
from crm.services.dashboard import DashboardFigures, DashboardService, OperatorRow
from crm.services.event_schemas import parse_event
from tests.factories import make_borrower, make_user, unique

S = OperatorState
# a day no other test writes to: Friday 14.03.2031, now 12:00 in Moscow
NOW = datetime(2031, 3, 14, 9, 0, tzinfo=UTC)


def at(hh: int, mm: int, ss: int = 0, day: int = 14) -> datetime:
    return datetime(2031, 3, day, hh, mm, ss, tzinfo=UTC)


@pytest.fixture
def day_clock() -> SettableClock:
    return SettableClock(NOW)


@pytest.fixture
def fixture_day(sessions):
    """Two operators (A in a group of their own), one borrower, and their day; returns (a, b, borrower)."""
    a = make_user(sessions, role=Role.OPERATOR)
    b = make_user(sessions, role=Role.OPERATOR)
    borrower = make_borrower(sessions)
    with sessions.begin() as session:
        group = UserGroup(name=f'Группа мониторинга {unique()}')
        session.add(group)
        session.flush()
        session.get(User, a.id).group_id = group.id  # type: ignore[union-attr]
        loan_id = session.scalar(select(Loan.id).where(Loan.borrower_id == borrower.id))
        comms = [
            (a.id, 'call_in', 'in', at(7, 0), True, 60),
            (a.id, 'call_out', 'out', at(7, 10), True, 120),
            (a.id, 'call_out', 'out', at(7, 20), False, 0),
            (a.id, 'sms', 'out', at(7, 30), None, None),
            (a.id, 'email', 'out', at(7, 31), None, None),
            (b.id, 'call_other', 'out', at(8, 0), True, 30),
            (b.id, 'sms', 'out', at(21, 30, day=13), None, None),  # 00:30 in Moscow: today
            (a.id, 'call_in', 'in', at(20, 59, day=13), True, 500),  # 23:59 yesterday in Moscow
        ]
        for operator_id, channel, direction, started, reached, duration in comms:
            session.add(
                Communication(
                    borrower_id=borrower.id,
                    operator_id=operator_id,
                    channel=channel,
                    direction=direction,
                    started_at=started,
                    reached=reached,
                    duration_s=duration,
                )
            )
        calls = [  # call_id, direction, started, answered, ended, duration
            ('in', at(7, 0), at(7, 0, 10), at(7, 1, 10), 60),  # answered in 10 s: in time
            ('in', at(7, 5), at(7, 5, 30), at(7, 6, 30), 60),  # answered in 30 s: late
            ('in', at(7, 8), None, at(7, 8, 40), None),  # abandoned
            ('in', at(8, 59, 50), None, None, None),  # ringing for 10 s: not counted yet
            ('out', at(7, 10), at(7, 10, 5), at(7, 12, 5), 120),
            ('in', at(10, 0, day=13), at(10, 0, 5, day=13), at(10, 1, day=13), 55),  # yesterday, 13:00
        ]
        call_ids = []
        for direction, started, answered, ended, duration in calls:
            call_id = f'dash-{unique()}'
            call_ids.append(call_id)
            session.add(
                Call(
                    call_id=call_id,
                    direction=direction,
                    state='ended' if ended else 'ringing',
                    number='79990000000',
                    operator_id=a.id,
                    borrower_id=borrower.id,
                    started_at=started,
                    answered_at=answered,
                    ended_at=ended,
                    duration_s=duration,
                )
            )
        ringing = call_ids[3]
        moves = [
            (a.id, at(6, 59), S.OFFLINE, S.READY),
            (a.id, at(7, 0), S.READY, S.RINGING),
            (a.id, at(7, 0, 10), S.RINGING, S.TALKING),
            (a.id, at(7, 1, 10), S.TALKING, S.WRAP_UP),
            (a.id, at(7, 1, 40), S.WRAP_UP, S.READY),  # 30 s
            (a.id, at(7, 10), S.READY, S.TALKING),
            (a.id, at(7, 12, 5), S.TALKING, S.WRAP_UP),
            (a.id, at(7, 13, 5), S.WRAP_UP, S.READY),  # 60 s
            (a.id, at(8, 59, 50), S.READY, S.RINGING),
            (b.id, at(8, 0), S.OFFLINE, S.READY),
            (b.id, at(8, 5), S.READY, S.BREAK),
        ]
        for user_id, moment, from_state, to_state in moves:
            session.add(
                OperatorStateChange(user_id=user_id, at=moment, from_state=from_state, to_state=to_state)
            )
        session.add(
            OperatorStateRow(
                user_id=a.id, state=S.RINGING, since=at(8, 59, 50), call_id=ringing, updated_at=at(8, 59, 50)
            )
        )
        session.add(
            OperatorStateRow(user_id=b.id, state=S.BREAK, reason='lunch', since=at(8, 5), updated_at=at(8, 5))
        )
        promises = [  # amount, status, created, due, paid
            (Decimal('1000'), 'open', at(7, 15), NOW.date() + timedelta(days=3), Decimal(0)),
            (Decimal('500'), 'open', at(8, 15), NOW.date() + timedelta(days=5), Decimal(0)),
            (Decimal('700'), 'cancelled', at(7, 40), NOW.date() + timedelta(days=5), Decimal(0)),
            (Decimal('300'), 'kept', at(9, 0, day=10), NOW.date(), Decimal('300')),
        ]
        for amount, status, created, due, paid in promises:
            session.add(
                Promise(
                    borrower_id=borrower.id,
                    loan_id=loan_id,
                    operator_id=a.id,
                    amount=amount,
                    due_on=due,
                    status=status,
                    paid_amount=paid,
                    created_at=created,
                )
            )
        for amount, moment in ((Decimal('300'), at(7, 30)), (Decimal('200'), at(8, 30))):
            session.add(
                Payment(
                    payment_id=f'dash-{unique()}',
                    loan_id=loan_id,
                    borrower_id=borrower.id,
                    amount=amount,
                    at=moment,
                    received_at=moment,
                )
            )
        for created in (at(7, 45), at(7, 45, day=13)):  # refused by the law: today's counts
            session.add(
                OutboxMessage(
                    key=f'dash-{unique()}',
                    channel='sms',
                    purpose='collection',
                    status='refused',
                    borrower_id=borrower.id,
                    to_address='79990000000',
                    body='…',
                    not_before=created,
                    expires_at=created + timedelta(days=3),
                    created_at=created,
                    rule='quiet_hours',
                )
            )
        for moment in (at(7, 50), at(7, 50, day=13)):  # a dial the law refused: today's counts
            session.add(AuditEntry(at=moment, user_id=a.id, action='call.refused', borrower_id=borrower.id))
    return a, b, borrower, group.id


def row_of(figures: DashboardFigures, user_id: int) -> OperatorRow:
    (row,) = [r for r in figures.operators if r.user_id == user_id]
    return row


def test_figures_of_a_fixture_day_are_the_hand_computed_ones(
    system, sessions, fixture_day, day_clock
) -> None:
    a, b, borrower, group_id = fixture_day
    service = DashboardService(sessions, system.services.promises, clock=day_clock)
    figures = service.figures()

    row_a = row_of(figures, a.id)
    assert (row_a.state, row_a.since, row_a.borrower_id) == (S.RINGING, at(8, 59, 50), borrower.id)
    assert row_a.borrower_name == 'Тестов Тест Тестович'
    assert (row_a.group_id, row_a.calls_in, row_a.calls_out, row_a.reached) == (group_id, 1, 2, 2)
    assert (row_a.talk_avg_s, row_a.wrap_up_avg_s, row_a.sms, row_a.emails) == (90, 45, 1, 1)
    assert (row_a.promises, row_a.promised) == (2, Decimal('1500.00'))
    assert (row_a.collected, row_a.kept_percent) == (Decimal('300.00'), Decimal('100.0'))

    row_b = row_of(figures, b.id)
    assert (row_b.state, row_b.reason, row_b.borrower_id, row_b.group_id) == (S.BREAK, 'lunch', None, None)
    assert (row_b.calls_in, row_b.calls_out, row_b.reached, row_b.talk_avg_s) == (0, 1, 1, 30)
    assert (row_b.wrap_up_avg_s, row_b.sms, row_b.emails, row_b.promises) == (None, 1, 0, 0)

    calls = figures.calls
    assert (calls.inbound, calls.answered_in_time, calls.abandoned) == (4, 1, 1)
    assert (calls.service_level, calls.abandoned_percent) == (Decimal('33.3'), Decimal('33.3'))
    assert calls.handle_avg_s == 80 + 45  # talk (60, 60, 120) + the day's wrap-ups (30, 60)
    assert (calls.refusals, calls.payments) == (2, Decimal('500.00'))  # a message and a dial

    hours = figures.hours  # Moscow hours: 07:xx UTC is 10, 08:xx is 11
    assert (hours.calls_today[10], hours.calls_today[11], sum(hours.calls_today)) == (4, 1, 5)
    assert (hours.calls_yesterday[13], sum(hours.calls_yesterday)) == (1, 1)
    assert (hours.promises[10], hours.promises[11], sum(hours.promises)) == (1, 1, 2)
    assert (hours.promised[10], hours.collected[10], hours.collected[11]) == (
        Decimal('1000.00'),
        Decimal('300.00'),
        Decimal('200.00'),
    )


def test_the_supervisor_sees_the_groups_they_lead_and_the_admin_all(system, sessions, fixture_day) -> None:
    _, _, _, group_id = fixture_day
    supervisor = make_user(sessions, role=Role.SUPERVISOR)
    with sessions.begin() as session:
        session.get(UserGroup, group_id).supervisor_id = supervisor.id  # type: ignore[union-attr]
    admin = to_actor(make_user(sessions, role=Role.ADMIN))
    service = system.services.dashboard
    assert [g.id for g in service.groups(to_actor(supervisor))] == [group_id]
    assert group_id in [g.id for g in service.groups(admin)]
    assert service.groups(to_actor(make_user(sessions, role=Role.SUPERVISOR))) == []


def test_queue_status_is_validated_deduplicated_and_announced(system, bus) -> None:
    body = {'queue': 'main', 'waiting': 3, 'longest_wait_s': 41, 'at': '2031-03-14T12:00:00+03:00'}
    deliveries = [Delivery('telephony.queue.status', json.dumps(body).encode())] * 2
    assert system.services.inbound.handle_deliveries(deliveries) == [None, None]
    notices = [n for n in bus.ui if n.get('kind') == 'queue_status']
    assert notices == [{**body, 'kind': 'queue_status', 'at': '2031-03-14T09:00:00+00:00'}]
    for bad in ({'waiting': -1}, {'at': '1999-12-31T23:00:00Z'}, {'queue': 'ma\x00in'}, {'queue': 'q' * 65}):
        delivery = Delivery('telephony.queue.status', json.dumps({**body, **bad}).encode())
        (outcome,) = system.services.inbound.handle_deliveries([delivery])
        assert outcome is not None, bad  # a dead letter, not a crash
    assert len([n for n in bus.ui if n.get('kind') == 'queue_status']) == 1


@contextmanager
def counted(engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    event.listen(engine, 'before_cursor_execute', count)
    try:
        yield statements
    finally:
        event.remove(engine, 'before_cursor_execute', count)


async def test_a_tick_costs_the_same_statements_for_1_and_for_20_dashboards(system, engine) -> None:
    hub = DashboardHub(system.services, LiveHub(), tick_s=3600)
    pushed: list[int] = []

    async def viewer(figures: DashboardFigures) -> None:
        pushed.append(len(figures.operators))

    await hub.tick()  # the first tick also reads yesterday's calls (kept for the day)
    measured = []
    for viewers in (1, 20):
        for i in range(viewers):
            hub._viewers[f'v{i}'] = viewer
        pushed.clear()
        with counted(engine) as statements:
            await hub.tick()
        assert len(pushed) == viewers
        measured.append(len(statements))
        hub._viewers.clear()
    print('statements per tick, 1 and 20 dashboards:', measured)
    assert measured[0] == measured[1]
    assert measured[0] <= 12


async def test_state_changes_heard_within_the_push_gap_go_out_together(system, sessions) -> None:
    """The first change goes out at once; the ones heard in the gap after it, in one push at its end."""
    import asyncio

    from crm.domain.notifications import OperatorStateChanged

    operators = [make_user(sessions, role=Role.OPERATOR) for _ in range(3)]
    hub = DashboardHub(system.services, LiveHub(), tick_s=3600, push_gap_s=1.0)
    pushes: list[dict[int, OperatorState]] = []

    async def viewer(figures: DashboardFigures) -> None:
        pushes.append({row.user_id: row.state for row in figures.operators if row.user_id in ids})

    ids = {operator.id for operator in operators}
    await hub.tick()
    hub._viewers['v'] = viewer
    for operator in operators:
        hub.on_notification(OperatorStateChanged(operator.id, OperatorState.BREAK, 'lunch', NOW, None))
        await asyncio.sleep(0.01)
    assert [sum(state == OperatorState.BREAK for state in push.values()) for push in pushes] == [1]
    for _ in range(50):
        if len(pushes) == 2:
            break
        await asyncio.sleep(0.1)
    assert [sum(state == OperatorState.BREAK for state in push.values()) for push in pushes] == [1, 3]


class EventsOnly:
    """What the PBX simulator publishes (it needs nothing else of a bus here)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def publish_event(self, routing_key: str, body: dict) -> None:
        self.events.append((routing_key, body))


def test_the_pbx_simulator_reports_its_queue_when_calls_ring_and_are_answered() -> None:
    bus, clock = EventsOnly(), SettableClock(NOW)
    pbx = PbxSimulator(bus, clock=clock, auto_answer_s=None)  # type: ignore[arg-type]
    first = pbx.ring('79990000001', '101')
    clock.advance(seconds=7)
    pbx.ring('79990000002', '102')
    clock.advance(seconds=2)
    pbx.answer(first.call_id)
    statuses = [
        (b['waiting'], b['longest_wait_s']) for key, b in bus.events if key == 'telephony.queue.status'
    ]
    assert statuses == [(1, 0), (2, 7), (1, 2)]
    (body,) = [b for key, b in bus.events if key == 'telephony.queue.status'][-1:]
    assert parse_event('telephony.queue.status', body).at == NOW + timedelta(seconds=9)  # it validates


def test_an_operators_day_is_for_the_supervisor_of_their_group_and_admins(sessions, clock) -> None:
    from crm.db.models import UserGroup
    from crm.domain.errors import AccessDenied
    from crm.services.operator_day import OperatorDayService

    days = OperatorDayService(sessions, clock=clock)
    lead = to_actor(make_user(sessions, role=Role.SUPERVISOR))
    stranger = to_actor(make_user(sessions, role=Role.SUPERVISOR))
    admin = to_actor(make_user(sessions, role=Role.ADMIN))
    operator = make_user(sessions, role=Role.OPERATOR)
    with sessions.begin() as session:
        group = UserGroup(name=f'Группа {unique()}', supervisor_id=lead.id)
        session.add(group)
        session.flush()
        session.get(User, operator.id).group_id = group.id
    with pytest.raises(AccessDenied):
        days.today(stranger, operator.id)
    with pytest.raises(AccessDenied):
        days.today(to_actor(operator), operator.id)
    assert days.today(lead, operator.id).contacts == () == days.today(admin, operator.id).contacts
