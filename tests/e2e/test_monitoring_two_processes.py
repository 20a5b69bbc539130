"""Two app processes on one PostgreSQL and one RabbitMQ vhost: a supervisor watches «Мониторинг» on
process B while an operator works on process A. What A's operator does (a tab opened, a break taken from
the header, back to Готов) and a call that rings them (an event from the PBX on RabbitMQ) reach B's
dashboard as ``OperatorStateChanged`` over the ``crm.ui`` fanout, without a reload of B's page."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.conftest import need_service
from tests.e2e.conftest import log_in, running_app
from tests.e2e.test_screen_pop import publish_incoming
from tests.factories import make_borrower, make_operator_led_by, unique_phone

WAIT_MS = 15_000  # two app processes and Chromium on a busy two-core machine


@pytest.fixture(scope='module')
def two_apps(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """Process A (the module's ``app_url``) and process B, on the same database and RabbitMQ vhost. B reads
    the dashboard's figures once, on opening (a tick of 10 minutes): every later change on its page can
    only have come over the ``crm.ui`` fanout."""
    if not os.environ.get('CRM_TEST_DATABASE_URL'):
        need_service('two app processes share PostgreSQL: set CRM_TEST_DATABASE_URL')
    if not os.environ.get('CRM_TEST_AMQP_URL'):
        need_service('two app processes talk over RabbitMQ: set CRM_TEST_AMQP_URL')
    first = request.getfixturevalue('app_url')
    database_url = request.getfixturevalue('database_url')
    with running_app(database_url, tmp_path_factory.mktemp('var-b'), CRM_DASHBOARD_TICK_S='600') as second:
        yield first, second


def test_a_dashboard_on_another_process_follows_the_operator(two_apps, browser, sessions, output_dir) -> None:
    app_a, app_b = two_apps
    operator = make_operator_led_by(sessions)
    phone = unique_phone()
    make_borrower(sessions, last='Дальний', first='Денис', phones=(phone,))

    watching = browser.new_context(viewport={'width': 1440, 'height': 900}, locale='ru-RU')
    working = browser.new_context(viewport={'width': 1280, 'height': 800}, locale='ru-RU')
    try:
        supervisor = watching.new_page()  # on process B
        supervisor.goto(f'{app_b}/monitoring')
        log_in(supervisor, 'supervisor', 'supervisor')
        row = supervisor.get_by_test_id(f'monitoring-state-{operator.id}')
        expect(row).to_have_text('Не в сети', timeout=WAIT_MS)
        supervisor.evaluate('window.crmSamePage = true')  # gone if the page were loaded again

        tab = working.new_page()  # on process A
        tab.goto(f'{app_a}/')
        log_in(tab, operator.login, 'secret')
        expect(row).to_have_text('Готов', timeout=WAIT_MS)  # A's tab opened: the operator is ready

        chip = tab.get_by_role('button').filter(has_text=re.compile(r'^Готов'))
        chip.click()
        tab.get_by_text('Перерыв → обед', exact=True).click()
        expect(row).to_have_text('Перерыв: обед', timeout=WAIT_MS)

        tab.get_by_role('button').filter(has_text=re.compile(r'^Перерыв')).click()
        tab.get_by_text('Готов', exact=True).click()
        expect(row).to_have_text('Готов', timeout=WAIT_MS)

        publish_incoming(app_a, phone, operator.extension or '')  # on RabbitMQ: either process may take it
        expect(tab.get_by_test_id('borrower-name')).to_have_text('Дальний Денис Тестович', timeout=WAIT_MS)
        expect(row).to_have_text('Входящий', timeout=WAIT_MS)
        assert supervisor.evaluate('window.crmSamePage === true')  # pushed into the open page
        supervisor.screenshot(path=str(output_dir / 'monitoring-two-processes.png'), full_page=True)
    finally:
        working.close()
        watching.close()
