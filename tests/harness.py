"""What the tests and the benchmarks share: the headless Chromium they drive and a clean database.

The benchmarks import this too (``bench/*.py`` put the project root on ``sys.path``), so there is one
copy of each.
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pika
from pika.exceptions import ChannelClosedByBroker
from sqlalchemy import Engine, inspect, make_url, text

from crm.db.engine import make_engine
from crm.db.migrate import create_database_if_missing, upgrade
from crm.integrations.bus import EVENTS_EXCHANGE, EVENTS_QUEUE
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


def bench_database_url(name: str, sqlite_path: Path) -> str:
    """A benchmark's own, empty database: a fresh SQLite file by default, or on PostgreSQL (when
    ``CRM_BENCH_DATABASE_URL`` is set) the database ``<its name>_<name>``, created if missing and emptied."""
    url = os.environ.get('CRM_BENCH_DATABASE_URL')
    if not url:
        sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ('', '-wal', '-shm'):
            Path(f'{sqlite_path}{suffix}').unlink(missing_ok=True)
        return f'sqlite:///{sqlite_path}'
    return sibling_database(url, name)


def sibling_database(url: str, suffix: str) -> str:
    """The PostgreSQL database ``<its name>_<suffix>`` beside the one ``url`` names, created if missing and
    emptied: for a test or benchmark that writes so much it must not share the suite's database."""
    parsed = make_url(url)
    own = parsed.set(database=f'{parsed.database}_{suffix}').render_as_string(hide_password=False)
    create_database_if_missing(own)
    reset_postgres_schema(own)
    return own


def drop_database(url: str) -> None:
    """Drop a database :func:`sibling_database` made (its connections closed first)."""
    parsed = make_url(url)
    admin = make_engine(parsed.set(database='postgres').render_as_string(hide_password=False))
    try:
        with admin.connect().execution_options(isolation_level='AUTOCOMMIT') as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    finally:
        admin.dispose()


def purge_events_queue(amqp_url: str) -> int:
    """Empty the CRM's events queue of what an earlier run left; the number of messages dropped."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        try:
            return channel.queue_purge(EVENTS_QUEUE).method.message_count or 0
        except ChannelClosedByBroker:  # the queue does not exist yet: the consumer declares it
            return 0
    finally:
        connection.close()


def machine(load_before: float | None = None) -> dict[str, Any]:
    """What a benchmark ran on, for its JSON: cores, platform, Python, the load average (1 min) before
    the run, if given, and after it."""
    now = round(os.getloadavg()[0], 2)
    return {
        'cpus': os.cpu_count(),
        'platform': platform.platform(),
        'python': platform.python_version(),
        'loadavg_1m': [round(load_before, 2), now] if load_before is not None else now,
    }


def publish_burst(
    amqp_url: str, routing_key: str, bodies: list[dict[str, Any]], barrier: threading.Barrier
) -> None:
    """Publish events to ``crm.events`` as fast as one connection can, starting when ``barrier`` lets
    every publisher go. No confirms: the consumer is measured, not the publisher; the channel's close-ok
    comes after the broker took every publish before it."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        properties = pika.BasicProperties(
            content_type='application/json', delivery_mode=pika.DeliveryMode.Persistent
        )
        payloads = [json.dumps(body).encode() for body in bodies]
        barrier.wait()
        for payload in payloads:
            channel.basic_publish(EVENTS_EXCHANGE, routing_key, payload, properties)
        channel.close()
    finally:
        connection.close()


def load_once(
    url: str, *, name: str, wanted: dict[str, str], reload: bool, load: Callable[[Engine], None]
) -> tuple[float | None, bool]:
    """A big benchmark database filled once and reused while its marker (table ``bench_<name>_meta``)
    says it holds what ``wanted`` describes; else wiped, migrated and filled by ``load``.
    Returns (the seconds the fill took, whether it was reused)."""
    create_database_if_missing(url)
    table = f'bench_{name}_meta'
    engine = make_engine(url)
    try:
        marker: dict[str, str] = {}
        if inspect(engine).has_table(table):
            with engine.connect() as connection:
                marker = {
                    key: value for key, value in connection.execute(text(f'SELECT key, value FROM {table}'))
                }
        if not reload and all(marker.get(k) == v for k, v in wanted.items()):
            return (float(marker['load_s']) if marker.get('load_s') else None), True
    finally:
        engine.dispose()
    reset_postgres_schema(url)
    upgrade(url)
    engine = make_engine(url)
    try:
        started = time.perf_counter()
        load(engine)
        seconds = time.perf_counter() - started
        with engine.begin() as connection:
            connection.execute(text(f'CREATE TABLE {table} (key TEXT PRIMARY KEY, value TEXT)'))
            rows = [{'key': k, 'value': v} for k, v in (wanted | {'load_s': f'{seconds:.1f}'}).items()]
            connection.execute(text(f'INSERT INTO {table} (key, value) VALUES (:key, :value)'), rows)
        return seconds, False
    finally:
        engine.dispose()
