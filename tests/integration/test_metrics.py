"""``GET /metrics``: this process's figures in Prometheus' text format, behind the API's bearer token."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from crm import bootstrap
from crm.api import routes
from crm.config import Settings
from crm.integrations.bus import InProcessBus
from tests.conftest import TEST_API_TOKEN

AUTH = {'Authorization': f'Bearer {TEST_API_TOKEN}'}


def client_for(system: bootstrap.System) -> TestClient:
    app = FastAPI()
    routes.install(app, system.services)
    return TestClient(app)


def value(body: str, name: str) -> float:
    found = re.search(rf'^{name} (\S+)$', body, re.MULTILINE)
    assert found, f'{name} not in:\n{body}'
    return float(found.group(1))


def test_counts_every_statement_of_the_process(engine, database_url, clock) -> None:
    settings = Settings(database_url=database_url, api_token=TEST_API_TOKEN)
    system = bootstrap.build(settings, engine=engine, bus=InProcessBus(), clock=clock)
    client = client_for(system)

    first = client.get('/metrics', headers=AUTH)
    assert first.status_code == 200
    assert first.headers['content-type'].startswith('text/plain; version=0.0.4')
    assert '# TYPE crm_db_statements_total counter' in first.text
    before = value(first.text, 'crm_db_statements_total')

    with engine.connect() as connection:
        for _ in range(3):
            connection.execute(text('SELECT 1'))
    after = value(client.get('/metrics', headers=AUTH).text, 'crm_db_statements_total')
    assert after >= before + 3
    # the bootstrap token is checked without the database: scraping adds no statement
    assert value(client.get('/metrics', headers=AUTH).text, 'crm_db_statements_total') - after < 3


def test_refused_without_the_api_token(engine, database_url, clock) -> None:
    settings = Settings(database_url=database_url, api_token=TEST_API_TOKEN)
    system = bootstrap.build(settings, engine=engine, bus=InProcessBus(), clock=clock)
    client = client_for(system)
    for headers in ({}, {'Authorization': 'Bearer wrong'}, {'Authorization': 'Basic eDp5'}):
        response = client.get('/metrics', headers=headers)
        assert response.status_code == 401, headers
        assert response.headers['www-authenticate'] == 'Bearer'
        assert 'crm_db_statements_total' not in response.text
