"""An operator in a real browser: log in, find a borrower by phone, open the card, see the debt."""

from __future__ import annotations

from sqlalchemy import select

from crm.db.models import Borrower, BorrowerPhone, User
from crm.domain import formatting as fmt
from crm.domain.identifiers import format_phone


def test_operator_finds_a_borrower_by_phone_and_reads_the_debt(app_url, page, sessions, output_dir) -> None:
    with sessions() as session:
        borrower, phone = session.execute(
            select(Borrower, BorrowerPhone.phone)
            .join(BorrowerPhone, BorrowerPhone.borrower_id == Borrower.id)
            .join(User, User.id == Borrower.assigned_operator_id)
            .where(User.login == 'operator1', Borrower.days_past_due > 0, Borrower.archived.is_(False))
            .order_by(Borrower.days_past_due.desc())
        ).first()
    full_name = ' '.join(p for p in (borrower.last_name, borrower.first_name, borrower.middle_name) if p)

    page.goto(app_url + '/')
    page.get_by_text('Вход в систему').wait_for()
    page.screenshot(path=str(output_dir / 'login.png'))
    page.get_by_label('Логин/Email').fill('operator1')
    page.get_by_label('Пароль').fill('operator')
    page.get_by_role('button', name='Войти').click()
    page.get_by_text('Мои заёмщики').first.wait_for()
    page.wait_for_selector('tbody tr')
    page.screenshot(path=str(output_dir / 'borrower-list.png'))

    search = page.get_by_placeholder('ФИО, телефон, паспорт, PIN, ИНН, СНИЛС').first
    search.fill(format_phone(phone))
    search.press('Enter')
    page.get_by_text(f'PIN: {borrower.pin}').first.wait_for()
    page.screenshot(path=str(output_dir / 'search.png'))
    page.get_by_role('link', name=full_name).click()

    page.get_by_text('Просроченная задолженность').wait_for()
    assert page.get_by_text(fmt.money(borrower.overdue_amount)).first.is_visible()
    assert page.get_by_text(f'PIN: {borrower.pin}').is_visible()
    page.screenshot(path=str(output_dir / 'borrower-card.png'), full_page=True)
