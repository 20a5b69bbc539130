"""Shared fixtures: one migrated test database per run (PostgreSQL under CI, SQLite otherwise).

No test depends on the day or hour it runs: "now" is ``TEST_NOW`` everywhere — the demo data is seeded
as of that day, services get a clock standing at it, and the app processes the tests start
(``app_env``, the end-to-end app) run on a clock that starts there (``CRM_CLOCK_START``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from crm.config import ENV_OVERRIDES
from crm.db.engine import make_engine, make_sessions
from crm.db.migrate import upgrade
from crm.domain.clock import SettableClock
from tests.harness import reset_postgres_schema

REQUIRE_SERVICES = os.environ.get('CRM_REQUIRE_SERVICES') == '1'
DEMO_BORROWERS = 300
TEST_API_TOKEN = 'test-api-token'
# Wednesday 26.11.2026, 12:00 in Moscow: a working day, inside the permitted call hours everywhere
# west of Yakutsk. The one "now" of the whole suite.
TEST_NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def need_service(reason: str) -> None:
    """Skip for want of a server, or fail when CI says the servers must be there."""
    if REQUIRE_SERVICES:
        pytest.fail(f'{reason} (CRM_REQUIRE_SERVICES=1)', pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope='session')
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A freshly migrated database holding the demo data set (300 borrowers) as of TEST_NOW."""
    url = os.environ.get('CRM_TEST_DATABASE_URL')
    if url:
        try:
            reset_postgres_schema(url)
        except OperationalError as error:
            need_service(f'PostgreSQL at CRM_TEST_DATABASE_URL is unreachable: {error.orig}')
    else:
        url = f'sqlite:///{tmp_path_factory.mktemp("db") / "crm.sqlite3"}'
    upgrade(url)
    from crm.db.demo import seed_demo

    engine = make_engine(url)
    seed_demo(make_sessions(engine), borrowers=DEMO_BORROWERS, clock=SettableClock(TEST_NOW))
    engine.dispose()
    return url


@pytest.fixture(scope='session')
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope='session')
def sessions(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose "now" (audit entries written through them) is TEST_NOW."""
    return make_sessions(engine, SettableClock(TEST_NOW))


@pytest.fixture
def clock() -> SettableClock:
    """The clock for the services a test builds: stands at TEST_NOW until the test moves it."""
    return SettableClock(TEST_NOW)


@pytest.fixture
def amqp_url() -> str:
    """A reachable RabbitMQ from CRM_TEST_AMQP_URL (skip without one; fail if CI says it must be there)."""
    import pika
    from pika.exceptions import AMQPError

    url = os.environ.get('CRM_TEST_AMQP_URL')
    if not url:
        need_service('RabbitMQ: set CRM_TEST_AMQP_URL')
    assert url is not None
    try:
        pika.BlockingConnection(pika.URLParameters(url)).close()
    except AMQPError as error:
        need_service(f'RabbitMQ at CRM_TEST_AMQP_URL is unreachable: {error!r}')
    return url


@pytest.fixture
def is_postgres(database_url: str) -> bool:
    return make_url(database_url).get_backend_name() == 'postgresql'


def set_app_env(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    """A setting for the app a test starts in this process (undone after the test)."""
    monkeypatch.setitem(ENV_OVERRIDES, name, value)


@pytest.fixture
def app_env(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Environment for starting app.py against the test database (no demo seeding, a fixed secret,
    a clock that starts at TEST_NOW)."""
    # into the settings' overrides, not os.environ: setenv races getenv in threads still running
    for name, value in {
        'CRM_DATABASE_URL': database_url,
        'CRM_DEMO': '0',
        'CRM_SECRET': 'test-secret',
        'CRM_API_TOKEN': TEST_API_TOKEN,
        'CRM_PBX_SIMULATOR': '1',
        'CRM_CLOCK_START': TEST_NOW.isoformat(),
        # the app does not send the outbox by itself: a page test sees what it queued stay queued, and
        # a test that wants it sent runs a dispatcher of its own (``OutboxDispatcher.run_once``)
        'CRM_OUTBOX_DISPATCHER': '0',
        'CRM_AMQP_URL': '',
    }.items():
        set_app_env(monkeypatch, name, value)
    return database_url
