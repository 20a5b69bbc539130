"""``GET /healthz``: 200 when the database and the bus answer, 503 naming the part that does not."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from crm import bootstrap
from crm.api import routes
from crm.config import Settings
from crm.integrations.bus import InProcessBus
from crm.integrations.rabbitmq import RabbitBus
from tests.loopback import closed_port


def client_for(system: bootstrap.System) -> TestClient:
    app = FastAPI()
    routes.install(app, system.services)
    return TestClient(app)


def test_healthy_process_is_200_and_names_itself(engine, database_url, clock) -> None:
    settings = Settings(database_url=database_url, instance='node7')
    system = bootstrap.build(settings, engine=engine, bus=InProcessBus(), clock=clock)
    response = client_for(system).get('/healthz')
    assert response.status_code == 200
    assert response.json() == {'status': 'ok', 'database': 'ok', 'bus': 'ok', 'process': 'node7'}
    assert response.headers['cache-control'] == 'no-store'


def test_unreachable_database_is_503_without_the_error(clock) -> None:
    url = f'postgresql+psycopg://postgres:secret@127.0.0.1:{closed_port()}/crm'
    system = bootstrap.build(Settings(database_url=url), bus=InProcessBus(), clock=clock)
    try:
        response = client_for(system).get('/healthz')
    finally:
        system.stop()
    assert response.status_code == 503
    body = response.json()
    assert body['status'] == 'fail' and body['database'] == 'fail' and body['bus'] == 'ok'
    assert body['process'].isdigit()  # no CRM_INSTANCE: the process id
    assert set(body) == {'status', 'database', 'bus', 'process'}
    assert 'secret' not in response.text and '127.0.0.1' not in response.text


def test_bus_not_connected_is_503_and_connected_is_200(engine, database_url, clock, amqp_url, names) -> None:
    bus = RabbitBus(amqp_url, names=names, consume_events=False)
    system = bootstrap.build(Settings(database_url=database_url), engine=engine, bus=bus, clock=clock)
    client = client_for(system)
    response = client.get('/healthz')  # built, not started: no consumer connection
    assert response.status_code == 503 and response.json()['bus'] == 'fail'
    assert response.json()['database'] == 'ok'
    bus.start(lambda deliveries: [None] * len(deliveries), lambda body: None)
    try:
        assert client.get('/healthz').status_code == 200
    finally:
        bus.stop()
    assert client.get('/healthz').json()['bus'] == 'fail'
