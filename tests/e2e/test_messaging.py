"""In a real browser: a template SMS from an open card in four clicks, seen in the history as it goes."""

from __future__ import annotations

from decimal import Decimal

from playwright.sync_api import expect
from sqlalchemy import select

from crm.config import Settings
from crm.db.models import MessageTemplate, OutboxMessage, User
from tests.e2e.conftest import log_in
from tests.factories import make_borrower, unique, unique_phone

SIGN = f'{Settings.creditor_name}, {Settings.creditor_phone}'


def test_a_template_sms_from_the_card_in_four_clicks(app_url, page, sessions, output_dir) -> None:
    with sessions() as session:
        operator_id = session.scalar(select(User.id).where(User.login == 'operator1'))
    borrower = make_borrower(
        sessions,
        last='Уведомляемый',
        first='Олег',
        phones=(unique_phone(),),
        operator_id=operator_id,
        overdue=Decimal('5200'),
        days_past_due=12,
    )
    name = f'Напоминание e2e {unique()}'
    with sessions.begin() as session:
        session.add(
            MessageTemplate(
                channel='sms',
                kind='overdue',
                name=name,
                body='{{ name }}, просрочка {{ overdue_amount }}. {{ creditor_name }}, {{ contact_phone }}',
            )
        )
    sent_text = f'Олег Тестович, просрочка 5 200,00 ₽. {SIGN}'

    page.goto(app_url + f'/login?redirect_to=/borrower/{borrower.id}')
    log_in(page, 'operator1', 'operator')
    expect(page.get_by_test_id('borrower-name')).to_have_text('Уведомляемый Олег Тестович')

    clicks = 0

    def click(locator) -> None:
        nonlocal clicks
        locator.click()
        clicks += 1

    click(page.get_by_role('button', name='Отправить SMS', exact=True))  # 1: the card's button
    expect(page.get_by_text('Шаблон SMS сообщения', exact=True)).to_be_visible()
    click(page.get_by_test_id('message-template'))  # 2: «Вид шаблона» opens
    click(page.get_by_role('option', name=f'Просрочка · {name}', exact=True))  # 3: the template
    text = page.get_by_test_id('message-text')  # Quasar puts the attribute on the textarea
    expect(text).to_have_value(sent_text)
    expect(page.get_by_test_id('message-counter')).to_have_text('UCS-2 · 73 симв. · 2 части (осталось 61)')
    page.screenshot(path=str(output_dir / 'sms-dialog.png'))
    send = page.get_by_test_id('message-send')
    expect(send).to_be_enabled()
    click(send)  # 4: «Отправить SMS»
    assert clicks <= 4

    expect(page.get_by_text('SMS поставлено в очередь')).to_be_visible()
    history = page.locator('.crm-history')
    expect(history).to_contain_text(sent_text)
    # the app's dispatcher sends it to the embedded gateway; every open card hears of it
    expect(history).to_contain_text('Отправлено', timeout=10_000)
    page.screenshot(path=str(output_dir / 'sms-sent.png'), full_page=True)
    with sessions() as session:
        (row,) = session.scalars(select(OutboxMessage).where(OutboxMessage.borrower_id == borrower.id))
    assert (row.status, row.body, row.attempts) == ('sent', sent_text, 1)
    assert row.gateway_id and row.gateway_id.startswith('local-')  # the embedded RecordingSms took it
