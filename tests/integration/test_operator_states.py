"""Operator states on the real database: the call path moves them, the worker's time-outs on an injected
clock, supervisors force breaks (audited), and every change is announced after its commit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from crm.db.models import AuditEntry, OperatorStateChange, OperatorStateRow, User, UserGroup
from crm.domain import Role
from crm.domain.errors import AccessDenied, ServiceError
from crm.domain.operator_states import FORCED, TIMED_OUT, OperatorState
from crm.integrations.bus import Delivery
from crm.services.auth import to_actor
from crm.services.call_views import CallResult
from crm.services.operator_states import OperatorStateService, OperatorStateWorker
from tests.factories import make_borrower, make_user, unique, unique_phone

S = OperatorState


@pytest.fixture
def states(system) -> OperatorStateService:
    return system.services.operator_states


@pytest.fixture
def worker(system) -> OperatorStateWorker:
    (found,) = [w for w in system.workers if isinstance(w, OperatorStateWorker)]
    return found


def deliver(system, event_type: str, body: dict[str, Any]) -> None:
    assert system.services.inbound.handle_deliveries([Delivery(event_type, json.dumps(body).encode())]) == [
        None
    ]


def state_of(sessions, user_id: int) -> OperatorStateRow:
    with sessions() as session:
        row = session.get(OperatorStateRow, user_id)
        assert row is not None
        return row


def history_of(sessions, user_id: int) -> list[OperatorStateChange]:
    with sessions() as session:
        return list(
            session.scalars(
                select(OperatorStateChange)
                .where(OperatorStateChange.user_id == user_id)
                .order_by(OperatorStateChange.id)
            )
        )


def announced(bus, user_id: int) -> list[tuple[str, str | None]]:
    return [
        (n['state'], n['reason']) for n in bus.ui if n['kind'] == 'operator_state' and n['user_id'] == user_id
    ]


def test_a_call_moves_the_operator_from_ready_to_wrap_up_and_back(
    system, states, bus, sessions, operator
) -> None:
    states.seen(operator)  # a tab opened: Готов
    assert states.current(operator).state is S.READY
    phone = unique_phone()
    make_borrower(sessions, phones=(phone,))
    call_id = f'pbx-{unique()}'
    at = '2026-11-26T12:00:00+03:00'
    deliver(
        system,
        'telephony.call.incoming',
        {'call_id': call_id, 'from': phone, 'to_extension': operator.extension, 'at': at},
    )
    assert (state_of(sessions, operator.id).state, state_of(sessions, operator.id).call_id) == (
        'ringing',
        call_id,
    )
    deliver(system, 'telephony.call.answered', {'call_id': call_id, 'at': at})
    assert state_of(sessions, operator.id).state == 'talking'
    system.services.calls.hold(operator, call_id)
    assert state_of(sessions, operator.id).state == 'on_hold'
    system.services.calls.resume(operator, call_id)
    deliver(system, 'telephony.call.ended', {'call_id': call_id, 'at': at, 'duration_s': 30})
    assert state_of(sessions, operator.id).state == 'wrap_up'
    system.services.calls.save_result(operator, call_id, CallResult(code='no_answer'))
    row = state_of(sessions, operator.id)
    assert (row.state, row.call_id) == ('ready', None)
    assert announced(bus, operator.id) == [
        ('ready', None), ('ringing', None), ('talking', None), ('on_hold', None), ('talking', None),
        ('wrap_up', None), ('ready', None),
    ]  # fmt: skip
    history = history_of(sessions, operator.id)
    assert [(h.from_state, h.to_state) for h in history] == [
        (None, 'ready'), ('ready', 'ringing'), ('ringing', 'talking'), ('talking', 'on_hold'),
        ('on_hold', 'talking'), ('talking', 'wrap_up'), ('wrap_up', 'ready'),
    ]  # fmt: skip


def test_a_batch_moves_an_operator_through_its_calls_in_the_events_order(
    system, states, sessions, operator
) -> None:
    """A batch's rings, answers and ends are applied as one run: the operator's moves keep the events'
    order — the first call rung, answered, ended (wrap-up), then the second rung while in wrap-up."""
    states.seen(operator)
    first, second = f'pbx-{unique()}', f'pbx-{unique()}'
    at = '2026-11-26T12:00:00+03:00'

    def ring(call_id: str) -> tuple[str, dict[str, Any]]:
        body = {'call_id': call_id, 'from': unique_phone(), 'to_extension': operator.extension, 'at': at}
        return 'telephony.call.incoming', body

    batch = [
        ring(first),
        ('telephony.call.answered', {'call_id': first, 'at': at}),
        ('telephony.call.ended', {'call_id': first, 'at': at, 'duration_s': 5}),
        ring(second),
    ]
    outcome = system.services.inbound.handle_deliveries(
        [Delivery(kind, json.dumps(body).encode()) for kind, body in batch]
    )
    assert outcome == [None] * 4
    row = state_of(sessions, operator.id)
    assert (row.state, row.call_id) == ('ringing', second)
    history = history_of(sessions, operator.id)
    assert [(h.to_state, h.call_id) for h in history] == [
        ('ready', None), ('ringing', first), ('talking', first), ('wrap_up', first), ('ringing', second),
    ]  # fmt: skip


def test_wrap_up_ends_after_its_time_out(system, states, worker, clock, bus, sessions, operator) -> None:
    states.seen(operator)
    call_id = f'pbx-{unique()}'
    at = '2026-11-26T12:00:00+03:00'
    deliver(
        system,
        'telephony.call.incoming',
        {'call_id': call_id, 'from': unique_phone(), 'to_extension': operator.extension, 'at': at},
    )
    deliver(system, 'telephony.call.ended', {'call_id': call_id, 'at': at})
    assert state_of(sessions, operator.id).state == 'wrap_up'
    clock.advance(seconds=50)
    states.seen(operator)  # the tab is still open
    clock.advance(seconds=50)
    states.seen(operator)
    worker.run_once()
    assert state_of(sessions, operator.id).state == 'wrap_up'  # 100 s of 120
    clock.advance(seconds=20)
    states.seen(operator)
    assert worker.run_once() >= 1
    assert state_of(sessions, operator.id).state == 'ready'
    assert announced(bus, operator.id)[-1] == ('ready', None)


def test_an_operator_whose_tabs_are_gone_goes_offline_and_comes_back(
    states, worker, clock, sessions, operator
) -> None:
    states.seen(operator)
    states.set_break(operator, 'lunch')
    clock.advance(seconds=59)
    worker.run_once()
    assert state_of(sessions, operator.id).state == 'break'
    clock.advance(seconds=1)
    worker.run_once()
    row = state_of(sessions, operator.id)
    assert (row.state, row.reason) == ('offline', TIMED_OUT)
    states.seen(operator)  # the tab is back
    assert states.current(operator).state is S.READY


def test_operator_sets_break_and_ready_and_is_refused_what_does_not_fit(states, sessions, operator) -> None:
    states.seen(operator)
    assert states.set_break(operator, 'lunch').label == 'Перерыв: обед'
    with pytest.raises(ServiceError, match='причину перерыва'):
        states.set_break(operator, 'кофе')
    assert states.set_ready(operator).state is S.READY
    with pytest.raises(ServiceError, match='Уже в статусе «Готов»'):
        states.set_ready(operator)
    assert state_of(sessions, operator.id).state == 'ready'


def test_a_supervisor_forces_a_break_and_a_logout_audited(states, bus, sessions, operator) -> None:
    supervisor = to_actor(make_user(sessions, role=Role.SUPERVISOR))
    stranger = to_actor(make_user(sessions, role=Role.SUPERVISOR))
    states.seen(operator)
    with pytest.raises(AccessDenied, match='своей группы'):  # not in a group this supervisor leads
        states.force_break(supervisor, operator.id, 'meeting')
    with sessions.begin() as session:
        group = UserGroup(name=f'Группа {operator.id}', supervisor_id=supervisor.id)
        session.add(group)
        session.flush()
        session.get(User, operator.id).group_id = group.id
    with pytest.raises(AccessDenied):
        states.force_break(stranger, operator.id, 'meeting')
    forced = states.force_break(supervisor, operator.id, 'meeting')
    assert (forced.state, forced.reason) == (S.BREAK, 'meeting')
    assert bus.ui[-1]['forced_by'] == supervisor.full_name and bus.ui[-1]['reason'] == 'meeting'
    states.force_logout(supervisor, operator.id)
    row = state_of(sessions, operator.id)
    assert (row.state, row.reason) == ('offline', FORCED)
    states.seen(operator)  # a forced logout is not undone by the open tab
    assert state_of(sessions, operator.id).state == 'offline'
    with sessions() as session:
        actions = session.execute(
            select(AuditEntry.action, AuditEntry.details).where(AuditEntry.user_id == supervisor.id)
        ).all()
        by = session.scalars(
            select(OperatorStateChange.by_user_id).where(OperatorStateChange.user_id == operator.id)
        )
        assert supervisor.id in set(by)
    assert [a for a, _ in actions] == ['operator.force_break', 'operator.force_logout']
    assert json.loads(actions[0][1]) == {'operator_id': operator.id, 'reason': 'meeting'}


def test_an_operator_cannot_force_others(states, sessions, operator) -> None:
    other = to_actor(make_user(sessions))
    states.seen(other)
    with pytest.raises(AccessDenied):
        states.force_break(operator, other.id, 'lunch')
    with pytest.raises(AccessDenied):
        states.force_logout(operator, other.id)
    assert state_of(sessions, other.id).state == 'ready'


def test_the_notification_is_published_after_the_commit(
    system, states, sessions, operator, monkeypatch
) -> None:
    """The bus sees the change only once another session can read it, and never for a rolled-back one."""
    states.seen(operator)
    seen_then: list[str] = []

    def publish_ui(body: dict[str, Any]) -> None:
        seen_then.append(state_of(sessions, operator.id).state)  # a new session: only committed rows

    monkeypatch.setattr(system.bus, 'publish_ui', publish_ui)
    states.set_break(operator, 'training')
    assert seen_then == ['break']
    with pytest.raises(ServiceError):
        states.set_break(operator, 'кофе')
    assert seen_then == ['break']


def test_a_presence_beat_gives_up_at_once_on_a_row_a_call_holds(
    states, sessions, operator, clock, is_postgres
) -> None:
    """PostgreSQL: the beat waits PRESENCE_LOCK_WAIT_MS for the row, not the statement time-out; the
    next beat records it."""
    import time

    from crm.services.operator_states import PRESENCE_LOCK_WAIT_MS

    if not is_postgres:
        pytest.skip('row locks: PostgreSQL (CRM_TEST_DATABASE_URL)')
    states.seen(operator)
    before = state_of(sessions, operator.id).last_seen_at
    clock.advance(seconds=20)
    with sessions.begin() as holder:  # a call's transaction moving the operator
        holder.execute(
            select(OperatorStateRow).where(OperatorStateRow.user_id == operator.id).with_for_update()
        )
        began = time.perf_counter()
        states.seen(operator)
        waited_ms = (time.perf_counter() - began) * 1000
    assert PRESENCE_LOCK_WAIT_MS <= waited_ms < PRESENCE_LOCK_WAIT_MS + 2000
    assert state_of(sessions, operator.id).last_seen_at == before
    states.seen(operator)
    assert state_of(sessions, operator.id).last_seen_at > before
