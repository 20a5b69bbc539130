"""The card's administrator actions in NiceGUI's user simulation: hide a record (operators no longer see
it), erase a borrower's personal data after a confirmation naming what goes; operators get neither."""

from __future__ import annotations

import sqlalchemy as sa
from nicegui import ui
from nicegui.testing import User

from crm.db.models import Borrower, Communication, ErasureAct, Loan
from tests.conftest import TEST_NOW
from tests.factories import make_borrower
from tests.ui.conftest import WAIT, log_in


def fill(user: User, label: str, value: object) -> None:
    kind = ui.select if label == 'Запись' else ui.input
    (element,) = [e for e in user.find(kind=kind).elements if e.props.get('label') == label]
    element.set_value(value)


async def test_admin_hides_a_record_and_erases_the_data(user: User, sessions) -> None:
    borrower = make_borrower(sessions, last='Скрытов')
    with sessions.begin() as session:
        session.execute(sa.update(Loan).where(Loan.borrower_id == borrower.id).values(state='closed'))
        note = Communication(
            borrower_id=borrower.id, channel='note', direction='out', started_at=TEST_NOW, comment='Лишнее'
        )
        session.add(note)
        session.flush()
        note_id = note.id

    await log_in(user, 'admin', 'admin', path=f'/borrower/{borrower.id}')
    await user.should_see('Скрытов', retries=WAIT)
    user.find('Скрыть запись').click()
    await user.should_see('Скрыть запись от операторов', retries=WAIT)
    fill(user, 'Запись', note_id)
    fill(user, 'Причина', 'Сведения о третьих лицах')
    user.find(marker='hide-confirm').click()
    await user.should_see('Запись скрыта от операторов', retries=WAIT)
    with sessions() as session:
        assert session.get(Communication, note_id).hidden_reason == 'Сведения о третьих лицах'

    user.find(marker='erase-open').click()
    await user.should_see('паспорт, ИНН, СНИЛС', retries=WAIT)
    fill(user, 'Причина (например, отзыв согласия)', 'Отзыв согласия')
    fill(user, 'Номер и дата обращения', 'Вх. № 5')
    user.find(marker='erase-confirm').click()
    await user.should_see('Акт № ', retries=WAIT)
    with sessions() as session:
        assert session.get(Borrower, borrower.id).last_name == 'Удалено'
        assert (
            session.scalar(sa.select(ErasureAct.reference).where(ErasureAct.borrower_id == borrower.id))
            == 'Вх. № 5'
        )


async def test_an_operator_has_no_such_buttons(user: User, sessions) -> None:
    borrower = make_borrower(sessions, last='Видимов')
    await log_in(user, 'operator1', 'operator', path=f'/borrower/{borrower.id}')
    await user.should_see('Видимов', retries=WAIT)
    await user.should_not_see('Удалить персональные данные')
    await user.should_not_see('Скрыть запись')
