"""``GET /metrics`` on the running app: open past the login middleware with the API token (401 without),
and it counts the open dashboards and the ticks that read their figures."""

from __future__ import annotations

import asyncio
import re

from nicegui.testing import User

from crm.domain import Role
from tests.conftest import TEST_API_TOKEN
from tests.factories import make_user
from tests.ui.conftest import WAIT, log_in

AUTH = {'Authorization': f'Bearer {TEST_API_TOKEN}'}


def value(body: str, name: str) -> float:
    found = re.search(rf'^{name} (\S+)$', body, re.MULTILINE)
    assert found, f'{name} not in:\n{body}'
    return float(found.group(1))


async def scrape(user: User) -> str:
    response = await user.http_client.get('/metrics', headers=AUTH)
    assert response.status_code == 200, response.text
    return response.text


async def test_metrics_count_the_open_dashboard_and_its_ticks(user: User, sessions) -> None:
    refused = await user.http_client.get('/metrics')
    assert refused.status_code == 401  # not a redirect to /login: the token guards it
    before = await scrape(user)
    assert value(before, 'crm_dashboard_viewers') == 0

    supervisor = make_user(sessions, role=Role.SUPERVISOR, password='secret')
    await log_in(user, supervisor.login, 'secret', path='/monitoring')
    await user.should_see('Мониторинг', retries=WAIT)
    for _ in range(100):  # the first tick reads the figures in a thread
        body = await scrape(user)
        if value(body, 'crm_dashboard_ticks_total') > value(before, 'crm_dashboard_ticks_total'):
            break
        await asyncio.sleep(0.1)
    assert value(body, 'crm_dashboard_viewers') == 1
    assert value(body, 'crm_dashboard_ticks_total') > value(before, 'crm_dashboard_ticks_total')
    assert value(body, 'crm_db_statements_total') > value(before, 'crm_db_statements_total')
    assert '# TYPE crm_ui_clients gauge' in body
