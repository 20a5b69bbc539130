"""The header's state chip: the operator sets «Перерыв → обед» and «Готов», and the chip follows a ring."""

from __future__ import annotations

from nicegui.testing import User

from crm.db.models import OperatorStateRow
from crm.domain import Role
from tests.factories import make_user, unique_phone
from tests.ui.conftest import WAIT, log_in, until
from tests.ui.test_screen_pop import post_event, ring


def chip_text(user: User) -> str:
    """What the chip says (its menu's items are not part of it)."""
    with user:
        (label,) = user.find(marker='operator-state-label').elements
        return str(getattr(label, 'text', ''))


def state_in_db(sessions, user_id: int) -> str | None:
    with sessions() as session:
        row = session.get(OperatorStateRow, user_id)
        return row.state if row is not None else None


async def test_operator_takes_a_break_and_comes_back_and_the_chip_follows_a_ring(
    user: User, sessions
) -> None:
    operator = make_user(sessions, role=Role.OPERATOR, password='secret')
    await log_in(user, operator.login, 'secret')
    await user.should_see('Мои заёмщики', retries=WAIT)
    await until(lambda: 'Готов' in chip_text(user))  # an open tab: Готов
    assert state_in_db(sessions, operator.id) == 'ready'

    user.find(marker='state-break-lunch').click()
    await until(lambda: 'Перерыв: обед' in chip_text(user))
    assert state_in_db(sessions, operator.id) == 'break'
    user.find(marker='state-ready').click()
    await until(lambda: 'Готов' in chip_text(user))
    assert state_in_db(sessions, operator.id) == 'ready'

    call_id = await ring(user, unique_phone(), operator.extension)
    await until(lambda: 'Входящий' in chip_text(user))
    assert state_in_db(sessions, operator.id) == 'ringing'
    at = '2026-11-26T10:00:05+03:00'
    await post_event(user, type='telephony.call.answered', call_id=call_id, at=at)
    await until(lambda: 'Разговор' in chip_text(user))
    await post_event(user, type='telephony.call.ended', call_id=call_id, at=at)
    await until(lambda: 'Постобработка' in chip_text(user))


async def test_supervisors_have_no_chip(user: User, sessions) -> None:
    supervisor = make_user(sessions, role=Role.SUPERVISOR, password='secret')
    await log_in(user, supervisor.login, 'secret')
    await user.should_see(supervisor.full_name, retries=WAIT)
    await user.should_not_see(marker='operator-state')
