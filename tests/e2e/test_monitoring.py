"""A supervisor in a real browser watches «Мониторинг» while an operator, in another browser, gets a call:
the operator's row changes to «Входящий» without a reload, and the operator's tab shows the caller."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect

from crm.db.models import OperatorStateRow
from tests.conftest import TEST_NOW
from tests.e2e.conftest import log_in
from tests.e2e.test_screen_pop import publish_incoming
from tests.factories import make_borrower, make_operator_led_by, unique_phone


def supervisor_dashboard(browser, app_url: str):
    """A context (close it) and its page: the demo supervisor logged in on «Мониторинг»."""
    watching = browser.new_context(viewport={'width': 1440, 'height': 900}, locale='ru-RU')
    supervisor = watching.new_page()
    supervisor.goto(f'{app_url}/monitoring')
    log_in(supervisor, 'supervisor', 'supervisor')
    return watching, supervisor


def test_a_supervisor_watches_an_operator_take_a_call(app_url, browser, sessions, output_dir) -> None:
    operator = make_operator_led_by(sessions)
    phone = unique_phone()
    make_borrower(sessions, last='Наблюдаемый', first='Борис', phones=(phone,))

    watching, supervisor = supervisor_dashboard(browser, app_url)
    working = browser.new_context(viewport={'width': 1280, 'height': 800}, locale='ru-RU')
    try:
        row = supervisor.get_by_test_id(f'monitoring-state-{operator.id}')
        expect(row).to_be_visible(timeout=10_000)

        tab = working.new_page()
        tab.goto(f'{app_url}/')
        log_in(tab, operator.login, 'secret')
        expect(row).to_have_text('Готов', timeout=10_000)  # a tab opened: the operator is ready

        publish_incoming(app_url, phone, operator.extension or '')
        expect(tab.get_by_test_id('borrower-name')).to_have_text('Наблюдаемый Борис Тестович', timeout=5_000)
        expect(row).to_have_text('Входящий', timeout=5_000)  # pushed to the dashboard, no reload
        supervisor.screenshot(path=str(output_dir / 'monitoring.png'), full_page=True)
    finally:
        working.close()
        watching.close()


def test_a_supervisor_puts_an_operator_on_a_break_from_the_row(app_url, browser, sessions) -> None:
    """The row's own «Перерыв» menu (drawn by the browser from the row's data) and its ticking time."""
    operator = make_operator_led_by(sessions)
    now = TEST_NOW  # the app's clock starts there
    with sessions.begin() as session:  # Готов for a minute, and seen lately: a break may be forced
        session.add(
            OperatorStateRow(
                user_id=operator.id, state='ready', since=now - timedelta(minutes=1), updated_at=now,
                last_seen_at=now + timedelta(hours=1),
            )
        )  # fmt: skip
    watching, supervisor = supervisor_dashboard(browser, app_url)
    try:
        state = supervisor.get_by_test_id(f'monitoring-state-{operator.id}')
        expect(state).to_have_text('Готов', timeout=10_000)
        elapsed = supervisor.get_by_test_id(f'monitoring-row-{operator.id}').locator('[data-state-elapsed]')
        expect(elapsed).to_have_text(re.compile(r'^\d+:\d\d'), timeout=5_000)
        expect(elapsed).not_to_have_text(elapsed.inner_text(), timeout=3_000)  # counted by the browser

        supervisor.get_by_test_id(f'monitoring-break-{operator.id}').click()
        supervisor.get_by_test_id(f'monitoring-break-{operator.id}-lunch').click()
        expect(state).to_have_text('Перерыв: обед', timeout=5_000)
        expect(supervisor.get_by_text('Оператор переведён на перерыв')).to_be_visible()
    finally:
        watching.close()
    with sessions() as session:
        row = session.get(OperatorStateRow, operator.id)
        assert row is not None and (row.state, row.reason) == ('break', 'lunch')
