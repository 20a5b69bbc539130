"""What the tests and the benchmarks share: the headless Chromium they drive and a clean database.

The benchmarks import this too (``bench/*.py`` put the project root on ``sys.path``), so there is one
copy of each.
"""

from __future__ import annotations

from pathlib import Path

import pika
from sqlalchemy import text

from crm.db.engine import make_engine
from crm.integrations.rabbitmq import QueueNames

CHROMIUM = Path('/usr/bin/chromium')
# Headless, as root, on a machine whose network is closed: without the background-networking flags
# Chromium keeps trying (and failing) to reach Google's services.
CHROMIUM_ARGS = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-quic',
]


def reset_postgres_schema(url: str) -> None:
    """Drop every table, type and extension of the database's public schema: a clean one to migrate.

    Only for databases a test run or a benchmark owns.
    """
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text('DROP SCHEMA IF EXISTS public CASCADE'))
            connection.execute(text('CREATE SCHEMA public'))
    finally:
        engine.dispose()


def delete_topology(amqp_url: str, names: QueueNames) -> None:
    """Remove a test's own prefixed queues and exchanges from the broker."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    for queue in (names.events_queue, names.dead_letter_queue):
        channel.queue_delete(queue)
    for exchange in (names.events_exchange, names.commands_exchange, names.ui_exchange):
        channel.exchange_delete(exchange)
    connection.close()
