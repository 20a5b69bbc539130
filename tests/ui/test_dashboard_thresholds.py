"""«Пороги» on «Мониторинг»: an administrator changes a state's thresholds in the dialog — a wrong line is
refused next to its field and nothing is saved; a saved one recolours the operator's row at the next
tick, «По умолчанию» takes it back. A supervisor sees the thresholds read-only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from nicegui import ui
from nicegui.testing import User
from sqlalchemy import delete, select

from crm.db.models import AuditEntry, DashboardThreshold, OperatorStateRow
from crm.domain import Role
from tests.conftest import TEST_NOW
from tests.factories import make_user
from tests.ui.conftest import WAIT, log_in, until
from tests.ui.test_monitoring import _any, board, has_row


@pytest.fixture(autouse=True)
def no_saved_thresholds(sessions) -> Iterator[None]:
    """The test database is shared: every test starts and ends with the defaults."""
    with sessions.begin() as session:
        session.execute(delete(DashboardThreshold))
    yield
    with sessions.begin() as session:
        session.execute(delete(DashboardThreshold))


def element(user: User, marker: str) -> ui.element:
    with user:
        (found,) = user.find(marker=marker).elements
        return found


def level_of(user: User, user_id: int) -> str:
    """The row's colour class ('' when not coloured)."""
    return str(board(user).rows[user_id]['level'])


def fill(user: User, state: str, warn: str, alert: str, critical: str) -> None:
    for field, value in (('warn', warn), ('alert', alert), ('critical', critical)):
        user.find(marker=f'threshold-{state}-{field}').clear().type(value)


def saved_row(sessions, state: str) -> tuple[int, int, int] | None:
    with sessions() as session:
        row = session.get(DashboardThreshold, state)
        return None if row is None else (row.warn_after, row.alert_after, row.critical_after)


async def test_an_admin_recolours_a_row_by_saving_thresholds(user: User, sessions) -> None:
    admin = make_user(sessions, role=Role.ADMIN, password='secret')
    operator = make_user(sessions, role=Role.OPERATOR)
    with sessions.begin() as session:  # on a break for 5 minutes: under the default 600 s, not coloured
        session.add(
            OperatorStateRow(
                user_id=operator.id, state='break', reason='lunch', since=TEST_NOW - timedelta(minutes=5),
                updated_at=TEST_NOW, last_seen_at=TEST_NOW + timedelta(hours=1),
            )
        )  # fmt: skip
    await log_in(user, admin.login, 'secret', path='/monitoring')
    await until(lambda: has_row(user, operator.id))
    assert level_of(user, operator.id) == ''

    user.find(marker='monitoring-thresholds').click()
    await until(lambda: _any(user, 'threshold-break-warn'))
    await user.should_see('Пороги времени в статусе', retries=WAIT)
    assert element(user, 'threshold-break-critical').value == 1800
    assert 'по умолчанию' in element(user, 'threshold-note-break').text

    fill(user, 'break', '60', '30', '240')  # the second below the first: refused, nothing saved
    user.find(marker='threshold-save-break').click()
    await until(lambda: element(user, 'threshold-break-alert').error is not None)
    assert element(user, 'threshold-break-alert').error == 'Порог 2 (оранжевый): не меньше порога 1 (60 с)'
    assert element(user, 'threshold-break-warn').error is None
    assert saved_row(sessions, 'break') is None

    fill(user, 'break', '60', '120', '240')
    user.find(marker='threshold-save-break').click()
    await until(lambda: saved_row(sessions, 'break') == (60, 120, 240))
    await user.should_see('Пороги «Перерыв» сохранены', retries=WAIT)
    assert element(user, 'threshold-break-alert').error is None
    await until(lambda: 'изменено' in element(user, 'threshold-note-break').text)
    await until(lambda: level_of(user, operator.id) == 'crm-level-3', timeout=15.0)  # the next tick

    user.find(marker='threshold-reset-break').click()
    await until(lambda: saved_row(sessions, 'break') is None)
    await until(lambda: element(user, 'threshold-break-critical').value == 1800)
    await until(lambda: level_of(user, operator.id) == '', timeout=15.0)
    with sessions() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(
                AuditEntry.user_id == admin.id, AuditEntry.action.like('dashboard.%')
            )
        ).all()
    assert sorted(actions) == ['dashboard.thresholds.reset', 'dashboard.thresholds.save']


async def test_a_supervisor_sees_the_thresholds_read_only(user: User, sessions) -> None:
    supervisor = make_user(sessions, role=Role.SUPERVISOR, password='secret')
    await log_in(user, supervisor.login, 'secret', path='/monitoring')
    await until(lambda: _any(user, 'monitoring-thresholds'))
    user.find(marker='monitoring-thresholds').click()
    await until(lambda: _any(user, 'threshold-talking-warn'))
    assert element(user, 'threshold-talking-warn').value == 10
    assert 'readonly' in element(user, 'threshold-talking-warn').props
    assert not _any(user, 'threshold-save-talking')
    assert not _any(user, 'threshold-reset-talking')
