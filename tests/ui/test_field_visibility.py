"""«Видимость полей» in NiceGUI's user simulation: an admin changes a cell and it holds at once; on the
card a masked value shows masked, «Показать» reveals it (audited), and a masked phone still dials."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from nicegui import helpers
from nicegui.testing import User
from sqlalchemy import select

from crm.db.models import AuditEntry, Call
from crm.domain import Role
from crm.domain.field_visibility import ROLES, Field, Mode, Policy
from crm.domain.identifiers import format_passport, format_phone
from crm.services.auth import to_actor
from crm.services.field_visibility import FieldVisibilityService
from tests.factories import make_borrower, make_user, unique_phone
from tests.ui.conftest import WAIT, log_in, until
from tests.ui.test_screen_pop import ring, sees

DEFAULTS = {(role, field.value): Policy().mode(role, field) for role in ROLES for field in Field}


@pytest.fixture
def matrix(sessions) -> Iterator[tuple[FieldVisibilityService, object]]:
    """A matrix service on the test database (another "process" than the app's); defaults put back."""
    admin = to_actor(make_user(sessions, role=Role.ADMIN))
    service = FieldVisibilityService(sessions)
    yield service, admin
    service.save(admin, DEFAULTS)


async def emit(user: User, event: str, args: object) -> None:
    """What the card's script sends (card_markup.CARD_JS): a page-level event with its arguments — once
    the tab listens for it (the workspace starts listening after the card is drawn)."""
    client = user.client
    layout = client.layout
    wanted = helpers.event_type_to_camel_case(event)

    def listeners() -> list[str]:
        return [key for key, listener in layout._event_listeners.items() if listener.type == wanted]

    await until(lambda: len(listeners()) == 1)
    (listener_id,) = listeners()
    client.handle_event({'id': layout.id, 'listener_id': listener_id, 'args': [json.dumps(args)]})


def audited(sessions, user_id: int, action: str) -> list[str | None]:
    with sessions() as session:
        return list(
            session.scalars(
                select(AuditEntry.details).where(AuditEntry.user_id == user_id, AuditEntry.action == action)
            )
        )


async def test_admin_saves_the_matrix_and_it_holds_at_once(user: User, sessions, matrix) -> None:
    service, _ = matrix
    await log_in(user, 'admin', 'admin', path='/admin/fields')
    await user.should_see('Видимость полей', retries=WAIT)
    await user.should_see('HTTP API', retries=WAIT)
    (cell,) = user.find(marker='cell-supervisor-email').elements
    assert cell.value == 'visible'
    cell.set_value('hidden')
    user.find(marker='fields-save').click()
    await user.should_see('Видимость полей сохранена', retries=WAIT)
    assert service.matrix(matrix[1]).mode('supervisor', Field.EMAIL) is Mode.HIDDEN
    (entry,) = [
        d
        for d in audited(sessions, _admin_id(sessions), 'field.visibility')
        if 'supervisor.email' in (d or '')
    ]
    assert json.loads(entry or '{}')['changes']['supervisor.email'] == 'visible→hidden'


def _admin_id(sessions) -> int:
    from crm.db.models import User as UserRow

    with sessions() as session:
        return session.scalar(select(UserRow.id).where(UserRow.login == 'admin'))


async def test_show_reveals_a_masked_value_on_the_card_and_a_masked_phone_dials(
    user: User, sessions, matrix
) -> None:
    service, admin = matrix
    service.save(admin, {('operator', 'phones'): Mode.MASKED})
    operator = make_user(sessions, role=Role.OPERATOR)
    phone = unique_phone()
    borrower = make_borrower(sessions, phones=(phone,), operator_id=operator.id)
    await log_in(user, operator.login, 'secret', path=f'/borrower/{borrower.id}')
    await user.should_see(f'PIN: {borrower.pin}', retries=WAIT)
    masked = f'{borrower.passport[:2]} ** ***{borrower.passport[-3:]}'
    await user.should_see(masked, retries=WAIT)
    await user.should_see(f'+7 999 ***-**-{phone[-2:]}', retries=WAIT)
    await user.should_not_see(format_passport(borrower.passport))

    await emit(user, 'crm-reveal', {'field': 'passport', 'phone': None})  # «Показать»
    await until(lambda: audited(sessions, operator.id, 'field.reveal') != [])
    assert [json.loads(d or '{}') for d in audited(sessions, operator.id, 'field.reveal')] == [
        {'field': 'passport'}
    ]

    await emit(user, 'crm-dial', str(borrower.phones[0].id))  # the chip of the masked phone
    await user.should_see('Набор номера', retries=WAIT)
    await user.should_not_see(format_phone(phone))  # the call panel shows it masked as well

    def dialled() -> list[str]:
        with sessions() as session:
            return list(session.scalars(select(Call.number).where(Call.borrower_id == borrower.id)))

    await until(lambda: dialled() != [])
    assert dialled() == [phone]  # the real number, looked up on the server


async def test_hidden_phones_and_e_mail_say_so_on_the_message_and_call_buttons(
    user: User, sessions, matrix
) -> None:
    service, admin = matrix
    service.save(admin, DEFAULTS | {('operator', 'phones'): Mode.HIDDEN, ('operator', 'email'): Mode.HIDDEN})
    operator = make_user(sessions, role=Role.OPERATOR)
    borrower = make_borrower(sessions, last='Невидимов', phones=(unique_phone(),))
    await log_in(user, operator.login, 'secret', path=f'/borrower/{borrower.id}')
    await user.should_see('Невидимов', retries=WAIT)

    def title(label: str) -> str:
        (button,) = [b for b in user.find(label).elements if b.__class__.__name__ == 'Button']
        return str(button.parent_slot.parent.props.get('title', '')) if not button.enabled else ''

    await until(lambda: 'Видимость полей' in title('Отправить E-mail'))
    assert 'Видимость полей' in title('Отправить SMS')
    assert 'скрыты для вашей роли' in title('Новый звонок')


@pytest.mark.parametrize(('mode', 'shown'), [(Mode.HIDDEN, '—'), (Mode.MASKED, '**.**.1989')])
async def test_the_unknown_caller_panel_finds_borrowers_as_the_role_sees_them(
    user: User, sessions, matrix, mode: Mode, shown: str
) -> None:
    """«Неизвестный номер»'s search results show the birth date as the role may see it."""
    service, admin = matrix
    service.save(admin, DEFAULTS | {('operator', 'birth_date'): mode})
    operator = make_user(sessions, role=Role.OPERATOR)  # an extension of its own
    borrower = make_borrower(sessions, last='Безымяннов', phones=(unique_phone(),))
    await log_in(user, operator.login, 'secret')
    await user.should_see('Мои заёмщики', retries=WAIT)
    await ring(user, '+7 (800) 555-00-02', operator.extension or '')  # nobody's number
    await until(lambda: sees(user, 'Номер не найден среди заёмщиков'))
    user.find('Поиск заёмщика').clear().type(borrower.pin)  # the caller's number was prefilled
    user.find('Найти').click()
    await user.should_see(f'PIN: {borrower.pin} · Москва · {shown}', retries=WAIT)
    await user.should_not_see('09.09.1989')  # the factory's birth date
