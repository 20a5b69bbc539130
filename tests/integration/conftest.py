"""Fixtures the integration tests share: a system built on the test database with a recording bus."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest

from crm import bootstrap
from crm.bootstrap import System
from crm.config import Settings
from crm.domain import Role
from crm.integrations.bus import RecordingBus
from crm.integrations.rabbitmq import QueueNames
from crm.services.auth import to_actor
from crm.services.inbound import InboundRouter
from tests.factories import make_user
from tests.harness import delete_topology


@pytest.fixture
def bus() -> RecordingBus:
    return RecordingBus()


@pytest.fixture
def system(engine, database_url, bus, clock) -> System:
    """The services on the test database, the bus recording, the clock standing at TEST_NOW."""
    return bootstrap.build(Settings(database_url=database_url), engine=engine, bus=bus, clock=clock)


@pytest.fixture
def inbound(system) -> InboundRouter:
    return system.services.inbound


@pytest.fixture
def operator(sessions):
    return to_actor(make_user(sessions, role=Role.OPERATOR))


@pytest.fixture
def names(amqp_url: str) -> Iterator[QueueNames]:
    """Queue and exchange names of this test's own on the broker, removed afterwards."""
    names = QueueNames.prefixed(f'test.{uuid4().hex[:8]}.')
    yield names
    delete_topology(amqp_url, names)
