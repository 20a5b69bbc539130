"""An operator in a real browser: log in, find a borrower by phone, open the card, see the debt."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import select

from crm.db.models import Borrower, BorrowerPhone, User
from crm.domain import formatting as fmt
from crm.domain.identifiers import format_phone
from tests.e2e.conftest import log_in


def test_operator_finds_a_borrower_by_phone_and_reads_the_debt(app_url, page, sessions, output_dir) -> None:
    with sessions() as session:
        borrower, phone, phone_id = session.execute(
            select(Borrower, BorrowerPhone.phone, BorrowerPhone.id)
            .join(BorrowerPhone, BorrowerPhone.borrower_id == Borrower.id)
            .join(User, User.id == Borrower.assigned_operator_id)
            .where(User.login == 'operator1', Borrower.days_past_due > 0, Borrower.archived.is_(False))
            .order_by(Borrower.days_past_due.desc())
        ).first()
    full_name = ' '.join(p for p in (borrower.last_name, borrower.first_name, borrower.middle_name) if p)

    page.goto(app_url + '/')
    page.get_by_text('Вход в систему', exact=True).wait_for()
    page.screenshot(path=str(output_dir / 'login.png'))
    log_in(page, 'operator1', 'operator')
    page.get_by_text('Мои заёмщики', exact=True).wait_for()
    page.get_by_test_id('borrower-table').locator('tbody tr').first.wait_for()
    page.screenshot(path=str(output_dir / 'borrower-list.png'))

    search = page.get_by_placeholder('ФИО, телефон, паспорт, PIN, ИНН, СНИЛС', exact=True)
    search.fill(format_phone(phone))
    search.press('Enter')
    found = page.get_by_test_id(f'search-result-{borrower.id}')
    expect(found).to_contain_text(f'PIN: {borrower.pin}')
    page.screenshot(path=str(output_dir / 'search.png'))
    found.get_by_role('link', name=full_name, exact=True).click()

    overdue = page.get_by_test_id('overdue-amount')
    overdue.wait_for()
    expect(overdue).to_have_text(fmt.money(borrower.overdue_amount))
    expect(page.get_by_text(f'PIN: {borrower.pin}', exact=True)).to_be_visible()
    page.screenshot(path=str(output_dir / 'borrower-card.png'), full_page=True)

    # the tabs are switched by the browser alone: one panel shown at a time
    loans, credit = page.get_by_test_id('card-tab-loans'), page.get_by_test_id('card-tab-credit')
    expect(loans).to_be_visible()
    expect(credit).to_be_hidden()
    page.get_by_text('Кредитная история', exact=True).click()
    expect(credit).to_be_visible()
    expect(credit).to_contain_text('Заявки в компании')
    expect(loans).to_be_hidden()
    page.get_by_text('Займы (', exact=False).click()
    expect(loans).to_be_visible()

    # the borrower's local time is a clock the page keeps going; a phone chip dials its number
    expect(page.locator('[data-local-clock]')).to_have_count(1)
    refused = page.get_by_test_id('call-refusal').is_visible()  # the law may say no today: then it says why
    page.locator(f'[data-dial="{phone_id}"]').click()  # by the phone's row: the label may be masked
    if refused:
        expect(page.locator('.q-notification').first).to_contain_text('230-ФЗ')
    else:
        expect(page.get_by_text('Набор номера', exact=False).first).to_be_visible()
        expect(page.get_by_text(format_phone(phone), exact=False).first).to_be_visible()
