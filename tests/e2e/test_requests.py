"""In a real browser: an operator takes a request from the queue with the row's «Взять» and answers it in
the request's dialog; the row shows «Решено»."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import expect

from crm.db.models import Request
from crm.domain.contact_rules import CallLimits
from crm.domain.requests import answer_due
from tests.conftest import TEST_NOW
from tests.e2e.conftest import log_in
from tests.factories import make_borrower, unique


def test_an_operator_takes_a_request_from_the_queue_and_answers_it(
    app_url, page, sessions, output_dir
) -> None:
    borrower = make_borrower(sessions, last='Обращенцев')
    subject = f'Справка о закрытии {unique()}'
    opened = TEST_NOW - timedelta(days=1)
    with sessions.begin() as session:
        session.add(
            Request(
                borrower_id=borrower.id,
                origin='contact',
                channel='email',
                topic_code='documents',
                status='new',
                subject=subject,
                text='Нужна справка для банка',
                search_text=f'{subject} Нужна справка для банка Обращенцев {borrower.pin}',
                opened_at=opened,
                updated_at=opened,
                due_on=answer_due(opened.date(), CallLimits()),
            )
        )
    page.goto(f'{app_url}/requests')
    log_in(page, 'operator1', 'operator')

    page.get_by_text('Очередь (не назначены)', exact=True).click()
    search = page.get_by_placeholder('Текст, ФИО, PIN, телефон')
    search.fill(subject)
    search.press('Enter')
    table = page.get_by_test_id('request-table')
    row = table.locator('tbody tr', has_text=subject)
    expect(row).to_have_count(1)
    expect(row).to_contain_text('Новое')
    row.get_by_test_id('request-take').click()
    expect(page.get_by_text('взято в работу')).to_be_visible()
    expect(row).to_have_count(0)  # no longer in the queue

    page.get_by_text('Мои', exact=True).click()
    expect(row).to_have_count(1)
    expect(row).to_contain_text('В работе')
    row.get_by_text(subject).click()
    page.get_by_label('Ответ заёмщику или комментарий').fill('Справка отправлена на e-mail')
    page.get_by_role('button', name='Ответить').click()
    expect(page.get_by_text('Ответ записан')).to_be_visible()
    page.get_by_role('button', name='Закрыть', exact=True).click()
    expect(row).to_contain_text('Решено')
    page.screenshot(path=str(output_dir / 'requests.png'), full_page=True)
