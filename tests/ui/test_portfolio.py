"""«Портфель» in NiceGUI's user simulation: an admin counts a segment and hands a leaving operator's
borrowers over; an operator is refused the page."""

from __future__ import annotations

import sqlalchemy as sa
from nicegui import ui
from nicegui.testing import User

from crm.db.models import Borrower
from crm.domain import Role
from tests.factories import make_borrower, make_user, unique
from tests.ui.conftest import WAIT, log_in, until


def select(user: User, label: str) -> ui.select:
    (element,) = [e for e in user.find(kind=ui.select).elements if e.props.get('label') == label]
    return element


def choose(user: User, label: str, value: object) -> None:
    select(user, label).set_value(value)


async def test_admin_counts_a_segment_and_hands_a_portfolio_over(user: User, sessions) -> None:
    leaving, heir = (make_user(sessions, role=Role.OPERATOR) for _ in range(2))
    city = f'Портфельск-{unique()}'
    ids = [make_borrower(sessions, operator_id=leaving.id).id for _ in range(3)]
    with sessions.begin() as session:
        session.execute(sa.update(Borrower).where(Borrower.id.in_(ids)).values(city=city))

    await log_in(user, 'admin', 'admin', path='/admin/portfolio')
    await user.should_see('Распределить сегмент', retries=WAIT)
    table = user.find(kind=ui.table).elements.pop()
    await until(lambda: any(row['name'] == leaving.full_name for row in table.rows))  # read after the page
    assert leaving.id in select(user, 'Текущий оператор').options
    choose(user, 'Текущий оператор', leaving.id)
    user.find(marker='portfolio-count').click()
    await user.should_see('В сегменте 3 заёмщика', retries=WAIT)

    choose(user, 'Уходящий оператор', leaving.id)
    choose(user, 'Кому (поровну)', [heir.id])
    user.find(marker='portfolio-hand-over').click()
    await user.should_see('Передано заёмщиков: 3 из 3', retries=WAIT)
    with sessions() as session:
        owners = set(session.scalars(sa.select(Borrower.assigned_operator_id).where(Borrower.id.in_(ids))))
    assert owners == {heir.id}


async def test_an_operator_is_refused(user: User) -> None:
    await log_in(user, 'operator1', 'operator', path='/admin/portfolio')
    await user.should_see('Раздел доступен только', retries=WAIT)
    await user.should_not_see('Распределить сегмент')
