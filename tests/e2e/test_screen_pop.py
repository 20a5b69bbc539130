"""In a real browser: the card an operator has open is replaced by the caller's card when the phone rings."""

from __future__ import annotations

import json
import os

import httpx
import pika
from playwright.sync_api import expect

from crm.integrations.bus import EVENTS_EXCHANGE
from tests.conftest import TEST_API_TOKEN
from tests.e2e.conftest import log_in
from tests.factories import make_borrower, unique, unique_phone


def publish_incoming(app_url: str, phone: str, extension: str) -> None:
    """Over RabbitMQ when the suite has one (the PBX's way), else through the HTTP API."""
    body = {
        'call_id': f'e2e-{unique()}',
        'from': phone,
        'to_extension': extension,
        'at': '2026-11-26T10:00:00Z',
    }
    amqp_url = os.environ.get('CRM_TEST_AMQP_URL')
    if amqp_url:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        connection.channel().basic_publish(
            EVENTS_EXCHANGE, 'telephony.call.incoming', json.dumps(body).encode()
        )
        connection.close()
        return
    response = httpx.post(
        app_url + '/api/v1/events',
        json={'type': 'telephony.call.incoming', **body},
        headers={'Authorization': f'Bearer {TEST_API_TOKEN}'},
    )
    assert response.status_code == 202, response.text


def test_open_card_pops_to_the_caller(app_url, page, sessions, output_dir) -> None:
    viewed = make_borrower(sessions, last='Открытый', first='Лев', phones=(unique_phone(),))
    phone = unique_phone()
    caller = make_borrower(sessions, last='Звонящий', first='Марк', phones=(phone,))

    page.goto(app_url + f'/login?redirect_to=/borrower/{viewed.id}')
    log_in(page, 'operator5', 'operator')
    name = page.get_by_test_id('borrower-name')
    expect(name).to_have_text('Открытый Лев Тестович')

    publish_incoming(app_url, phone, '105')
    expect(name).to_have_text('Звонящий Марк Тестович', timeout=5000)
    expect(page.get_by_test_id('call-state')).to_have_text('Входящий звонок — снимите трубку')
    page.wait_for_url(f'**/borrower/{caller.id}')  # the address follows, so a reload keeps the card
    expect(page.locator('body')).not_to_contain_text('Открытый Лев')  # nothing of the old card anywhere
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1  # no page load: in place
    page.screenshot(path=str(output_dir / 'screen-pop.png'), full_page=True)
