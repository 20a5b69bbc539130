"""A supervisor in a real browser watches «Мониторинг» while an operator, in another browser, gets a call:
the operator's row changes to «Входящий» without a reload, and the operator's tab shows the caller."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.conftest import log_in
from tests.e2e.test_screen_pop import publish_incoming
from tests.factories import make_borrower, make_operator_led_by, unique_phone


def test_a_supervisor_watches_an_operator_take_a_call(app_url, browser, sessions, output_dir) -> None:
    operator = make_operator_led_by(sessions)
    phone = unique_phone()
    make_borrower(sessions, last='Наблюдаемый', first='Борис', phones=(phone,))

    watching = browser.new_context(viewport={'width': 1440, 'height': 900}, locale='ru-RU')
    working = browser.new_context(viewport={'width': 1280, 'height': 800}, locale='ru-RU')
    try:
        supervisor = watching.new_page()
        supervisor.goto(f'{app_url}/monitoring')
        log_in(supervisor, 'supervisor', 'supervisor')
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
