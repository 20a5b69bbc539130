"""«Мониторинг»: a supervisor watches their group live — a ring moves the operator's row without a reload —
and does not see other groups' operators; from a row an operator is put on a break (the operator is told)."""

from __future__ import annotations

from nicegui import ui
from nicegui.testing import User
from sqlalchemy import select

from crm.db.models import AuditEntry, Communication, OperatorStateRow, UserGroup
from crm.db.models import User as UserRow
from crm.domain import Role
from crm.pages.components.monitoring_board import MonitoringBoard
from tests.conftest import TEST_NOW
from tests.factories import make_borrower, make_user, unique, unique_phone
from tests.ui.conftest import WAIT, log_in, until
from tests.ui.test_screen_pop import post_event, ring


def board(user: User) -> MonitoringBoard:
    """The dashboard's live part: one element, its rows and totals as last sent to the browser."""
    with user:
        (found,) = user.find(marker='monitoring-board').elements
        assert isinstance(found, MonitoringBoard)
        return found


def has_row(user: User, user_id: int) -> bool:
    return _any(user, 'monitoring-board') and user_id in board(user).rows


def state_of(user: User, user_id: int) -> str:
    """The state label an operator's row shows."""
    row = board(user).rows.get(user_id)
    return '' if row is None else str(row['state'])


def _any(user: User, marker: str) -> bool:
    """Whether the page has an element marked ``marker`` (``find`` raises when there is none)."""
    with user:
        return any(marker in e._markers for e in ui.context.client.elements.values())


def a_group(sessions, supervisor_id: int, *members: int) -> int:
    with sessions.begin() as session:
        group = UserGroup(name=f'Группа {unique()}', supervisor_id=supervisor_id)
        session.add(group)
        session.flush()
        for member in members:
            session.get(UserRow, member).group_id = group.id  # type: ignore[union-attr]
        return group.id


async def test_a_supervisor_sees_their_group_live_and_not_others(user: User, sessions) -> None:
    supervisor = make_user(sessions, role=Role.SUPERVISOR, password='secret')
    mine = make_user(sessions, role=Role.OPERATOR)
    other = make_user(sessions, role=Role.OPERATOR)
    a_group(sessions, supervisor.id, mine.id)
    a_group(sessions, make_user(sessions, role=Role.SUPERVISOR).id, other.id)

    await log_in(user, supervisor.login, 'secret', path='/monitoring')
    await user.should_see('Мониторинг', retries=WAIT)
    await until(lambda: has_row(user, mine.id))
    assert 'Не в сети' in state_of(user, mine.id)
    assert not has_row(user, other.id)

    await ring(user, unique_phone(), mine.extension or '')  # the state moves on the bus, no reload
    await until(lambda: 'Входящий' in state_of(user, mine.id), timeout=1.0)  # pushed

    status = {'queue': f'q{unique()}', 'waiting': 7, 'longest_wait_s': 65, 'at': '2026-11-26T12:00:00+03:00'}
    await post_event(user, type='telephony.queue.status', **status)  # the PBX's queue, through the API
    await until(lambda: board(user).totals.get('total-longest') == '1:05', timeout=2.0)


async def test_an_admin_puts_an_operator_on_a_break_from_the_row(user: User, sessions) -> None:
    admin = make_user(sessions, role=Role.ADMIN, password='secret')
    operator = make_user(sessions, role=Role.OPERATOR)
    with sessions.begin() as session:  # Готов: a break may be forced
        session.add(OperatorStateRow(user_id=operator.id, state='ready', since=TEST_NOW, updated_at=TEST_NOW))
    await log_in(user, admin.login, 'secret', path='/monitoring')
    await until(lambda: has_row(user, operator.id))
    assert 'Готов' in state_of(user, operator.id)
    user.find(marker='monitoring-board').trigger('pause', [operator.id, 'lunch'])  # the row's «Перерыв» menu
    await until(lambda: 'Перерыв: обед' in state_of(user, operator.id))
    with sessions() as session:
        row = session.get(OperatorStateRow, operator.id)
        assert row is not None and (row.state, row.reason) == ('break', 'lunch')


async def test_a_supervisor_opens_an_operators_contacts_of_today(user: User, sessions) -> None:
    supervisor = make_user(sessions, role=Role.SUPERVISOR, password='secret')
    operator = make_user(sessions, role=Role.OPERATOR)
    a_group(sessions, supervisor.id, operator.id)
    borrower = make_borrower(sessions, last='Сегодняшний')
    with sessions.begin() as session:
        session.add(
            Communication(
                borrower_id=borrower.id, operator_id=operator.id, channel='note', direction='out',
                started_at=TEST_NOW, comment='Уточнил реквизиты',
            )
        )  # fmt: skip
    await log_in(user, supervisor.login, 'secret', path='/monitoring')
    await until(lambda: has_row(user, operator.id))
    user.find(marker='monitoring-board').trigger('day', operator.id)  # the operator's name
    await user.should_see('Уточнил реквизиты', retries=WAIT)
    await user.should_see('Сегодняшний Тест Тестович', retries=WAIT)
    with sessions() as session:
        viewed = session.scalars(select(AuditEntry.action).where(AuditEntry.user_id == supervisor.id)).all()
    assert 'operator.day.view' in viewed


async def test_operators_do_not_get_the_dashboard(user: User, sessions) -> None:
    operator = make_user(sessions, role=Role.OPERATOR, password='secret')
    await log_in(user, operator.login, 'secret', path='/monitoring')
    await user.should_not_see('Уровень сервиса', retries=5)
