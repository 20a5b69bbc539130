"""«Шаблоны сообщений»: an administrator writes, checks and retires a template; operators stay out."""

from __future__ import annotations

from nicegui import ui
from nicegui.testing import User
from sqlalchemy import select

from crm.db.models import MessageTemplate
from tests.factories import make_borrower, unique
from tests.ui.conftest import WAIT, log_in, until


def saved_template(sessions, name: str) -> MessageTemplate | None:
    with sessions() as session:
        return session.scalar(select(MessageTemplate).where(MessageTemplate.name == name))


def body_of(user: User) -> ui.textarea:
    (body,) = user.find(kind=ui.textarea).elements
    return body


async def test_an_admin_writes_checks_and_retires_a_template(user: User, sessions) -> None:
    name = f'Напоминание для теста {unique()}'
    await log_in(user, 'admin', 'admin', path='/admin/templates')
    await user.should_see('Платёж через 3 дня', retries=WAIT)  # a demo template, under its kind
    await user.should_see('Напоминание о платеже', retries=WAIT)
    user.find(marker='new-template').click()
    await user.should_see('Текст шаблона', retries=WAIT)
    user.find('Название').type(name)
    user.find('Текст шаблона').type('{{ name }}, оплатите {{ bogus }}. ')
    user.find(marker='save').click()
    await user.should_see('неизвестная переменная «bogus»', retries=WAIT)
    assert saved_template(sessions, name) is None

    body_of(user).set_value('{{ name }}, оплатите {{ monthly_payment }} до {{ due_date }}. ')
    user.find(marker='variable-creditor_name').click()  # inserted at the end: no cursor in this browser
    user.find(marker='variable-contact_phone').click()
    assert body_of(user).value.endswith('. {{ creditor_name }}{{ contact_phone }}')
    await until(lambda: 'UCS-2' in user.find(marker='sms-counter').elements.pop().text)
    assert 'части' in user.find(marker='sms-counter').elements.pop().text
    user.find(marker='save').click()
    await user.should_see(f'Шаблон «{name}» сохранён', retries=WAIT)
    template = saved_template(sessions, name)
    assert template is not None and template.active
    assert template.body.endswith('{{ creditor_name }}{{ contact_phone }}')

    await user.should_see(marker=f'template-{template.id}', retries=WAIT)
    user.find(marker=f'template-{template.id}').click()
    await user.should_see('В архив', retries=WAIT)
    user.find('В архив').click()
    await user.should_see('перенесён в архив', retries=WAIT)
    retired = saved_template(sessions, name)
    assert retired is not None and not retired.active


async def test_the_preview_renders_for_a_found_borrower(user: User, sessions) -> None:
    borrower = make_borrower(sessions, last='Шаблонов', first='Пётр', middle='Ильич')
    await log_in(user, 'admin', 'admin', path='/admin/templates')
    await user.should_see('Платёж через 3 дня', retries=WAIT)
    user.find(marker='new-template').click()
    await user.should_see('Текст шаблона', retries=WAIT)
    user.find('Текст шаблона').type(
        '{{ name }}, долг {{ total_debt }}. {{ creditor_name }}, {{ contact_phone }}'
    )
    user.find('Заёмщик: PIN, ФИО или телефон').type(borrower.pin)
    user.find('Найти').click()
    (found,) = user.find(kind=ui.select, content='Заёмщик').elements
    await until(lambda: found.value == borrower.id)
    assert found.options == {borrower.id: f'Шаблонов Пётр Ильич · PIN {borrower.pin}'}
    user.find(marker='preview').click()
    await user.should_see('Пётр Ильич, долг 0,00 ₽. ООО МКК', retries=WAIT)


async def test_operators_cannot_open_the_templates(user: User) -> None:
    await log_in(user, 'operator1', 'operator', path='/admin/templates')
    await user.should_see('Раздел доступен только администратору', retries=WAIT)
    await user.should_not_see('Новый шаблон')
