"""In a real browser: the bureau's part is drawn inside the card's «Кредитная история» tab (teleported
into the place the tab's markup leaves), and a report asked for with consent shows its payment strips."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.conftest import log_in
from tests.factories import make_borrower


def test_the_bureau_report_is_asked_for_and_shown_in_the_credit_history_tab(
    app_url, page, sessions, output_dir
) -> None:
    borrower = make_borrower(sessions, last='Бюрова')
    page.goto(f'{app_url}/borrower/{borrower.id}')
    log_in(page, 'operator1', 'operator')

    credit = page.get_by_test_id('card-tab-credit')
    part = credit.get_by_test_id('card-bureau')
    request = credit.get_by_role('button', name='Запросить отчёт БКИ')
    page.get_by_text('Кредитная история', exact=True).click()
    expect(part).to_contain_text('Отчёт БКИ ещё не запрашивали')
    expect(request).to_be_visible()

    credit.get_by_role('button', name='Согласие на запрос в БКИ').click()
    page.get_by_role('button', name='Записать', exact=True).click()
    expect(part).to_contain_text('Согласие на запрос в БКИ от 26.11.2026')
    request.click()
    expect(part).to_contain_text('Открытые счета')
    expect(part.locator('.crm-strip').first.locator('span')).to_have_count(24)
    page.screenshot(path=str(output_dir / 'credit-history.png'), full_page=True)

    page.get_by_text('Займы (', exact=False).click()
    expect(request).to_be_hidden()  # it lives in the tab, not beside it
