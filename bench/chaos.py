"""`make chaos`: faults survived, measured, on a real 3-process cluster (PostgreSQL, RabbitMQ, HAProxy).

Each app process reaches PostgreSQL and RabbitMQ through TCP proxies of its own (tests/chaos_cluster.py),
so one process's broker connection can be cut, the database taken from all of them, and a process
SIGKILLed and started again. Scenarios (tests/chaos_scenarios.py), one after another:

1. ``events``: ``--events`` (10,000) inbound events — incoming calls, chat messages, payments, SMS
   delivery reports — published at ``--rate`` a second with publisher confirms; meanwhile node2's broker
   connection is cut for ``--broker-cut-s``, PostgreSQL is unreachable for ``--db-outage-s`` (10 s), and
   node3 is SIGKILLed and started again. Every event must have exactly one effect, counted in SQL.
2. ``mailing``: an SMS mailing to ``--sms`` (5,000) borrowers through a real HTTP gateway on loopback that
   answers 503 for ``--gateway-down-s`` (30 s); node2 is SIGKILLed when a third is sent. Every message
   must reach the gateway under its id exactly once.
3. ``reconnect``: an operator's Chromium tab on node3; node3 is SIGKILLed and the operator rung at once:
   the tab must be a live page again on another node within 5 s, logged in, the call and its card shown.
4. ``idle``: another operator's tab on node1 (never killed) opened before everything and left alone for
   ``--idle-s`` (and at least until the rest is done), with the session idle limit shortened to
   ``--session-idle-minutes``: no page load may happen, and a ring must pop the card.

The database is ``<CRM_CHAOS_DATABASE_URL>`` (default postgresql+psycopg://postgres@127.0.0.1:5432/
crm_chaos), **owned by this script**: emptied and migrated every run. RabbitMQ: ``CRM_CHAOS_AMQP_URL``
(default the ``crm_chaos`` vhost, made with rabbitmqctl; its events queue is purged first). Logs go to
stderr and var/chaos/node*.log; stdout gets exactly one JSON object. Exit status 1 if a scenario failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.*

from live_app import prepare_vhost
from sqlalchemy import Engine

from crm.db.engine import make_engine
from crm.db.migrate import create_database_if_missing, upgrade
from tests.chaos_cluster import ChaosCluster, chaos_cluster
from tests.chaos_scenarios import (
    START,
    Base,
    IdleTab,
    events_scenario,
    load_base,
    mailing_scenario,
    reconnect_scenario,
    services_system,
)
from tests.harness import CHROMIUM, CHROMIUM_ARGS, machine, purge_events_queue, reset_postgres_schema
from tests.loopback import SmsGatewayProcess

log = logging.getLogger('bench.chaos')
ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = 'postgresql+psycopg://postgres@127.0.0.1:5432/crm_chaos'
BROKER_URL = 'amqp://guest:guest@127.0.0.1:5672/%2F'
VHOST = 'crm_chaos'


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument('--events', type=int, default=10_000)
    parser.add_argument('--rate', type=float, default=400.0, help='events published a second')
    parser.add_argument('--broker-cut-s', type=float, default=5.0)
    parser.add_argument('--db-outage-s', type=float, default=10.0)
    parser.add_argument('--sms', type=int, default=5_000)
    parser.add_argument('--sms-rate', type=float, default=200.0, help="the cluster's SMS rate limit a second")
    parser.add_argument('--gateway-down-s', type=float, default=30.0)
    parser.add_argument('--outbox-lease-s', type=float, default=60.0, help='CRM_OUTBOX_LEASE_S')
    parser.add_argument('--idle-s', type=float, default=480.0, help='the idle tab: at least this long')
    parser.add_argument('--session-idle-minutes', type=int, default=6, help='CRM_SESSION_IDLE_MINUTES')
    parser.add_argument('--tunnel-timeout', default='8h', help="HAProxy's websocket idle timeout")
    parser.add_argument('--nodes', type=int, default=3)
    parser.add_argument('--var-dir', default=str(ROOT / 'var' / 'chaos'))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format='%(asctime)s %(levelname)s %(message)s')
    logging.getLogger('pika').setLevel(logging.CRITICAL)  # the cut connections are the point
    logging.getLogger('httpx').setLevel(logging.WARNING)
    report = run(args)
    print(json.dumps(report, ensure_ascii=False))
    sys.exit(0 if report['passed'] else 1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    database_url, amqp_url = prepare_services()
    engine = make_engine(database_url)
    base = load_base(engine, borrowers=500, reports=args.events // 6, mailing=args.sms)
    log.info('loaded run %s', base.tag)
    env = {
        'CRM_DEMO': '0',
        'CRM_CLOCK_START': START.isoformat(),
        'CRM_SMS_PER_SECOND': str(args.sms_rate),
        'CRM_OUTBOX_LEASE_S': str(args.outbox_lease_s),
        'CRM_SESSION_IDLE_MINUTES': str(args.session_idle_minutes),
        'CRM_SECRET': 'chaos-secret',
    }
    report: dict[str, Any] = {
        'what': 'faults survived on a real cluster (bench/chaos.py)',
        'nodes': args.nodes,
    }
    started = time.monotonic()
    from playwright.sync_api import sync_playwright

    with SmsGatewayProcess() as gateway, sync_playwright() as playwright:
        env |= {'CRM_SMS_GATEWAY_URL': gateway.url, 'CRM_SMS_GATEWAY_TOKEN': gateway.token or ''}
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        with chaos_cluster(
            nodes=args.nodes,
            database_url=database_url,
            amqp_url=amqp_url,
            var_dir=Path(args.var_dir),
            env=env,
            tunnel_timeout=args.tunnel_timeout,
        ) as cluster:
            log.info('cluster up at %s in %.1f s', cluster.url, time.monotonic() - started)
            report |= scenarios(args, cluster, browser, engine, database_url, amqp_url, base, gateway)
        browser.close()
    engine.dispose()
    report['seconds'] = round(time.monotonic() - started, 1)
    report['passed'] = all(report[name]['passed'] for name in ('events', 'mailing', 'reconnect', 'idle'))
    report['machine'] = machine(load_before)
    return report


def prepare_services() -> tuple[str, str]:
    """The script's own database (emptied and migrated) and broker URL (its events queue empty)."""
    database_url = os.environ.get('CRM_CHAOS_DATABASE_URL') or DATABASE_URL
    create_database_if_missing(database_url)
    reset_postgres_schema(database_url)
    upgrade(database_url)
    given_amqp_url = os.environ.get('CRM_CHAOS_AMQP_URL')
    if given_amqp_url:
        purge_events_queue(given_amqp_url)
        return database_url, given_amqp_url
    # a vhost of its own (made with rabbitmqctl), so no other app takes its events
    return database_url, prepare_vhost(BROKER_URL, VHOST)


def scenarios(
    args: argparse.Namespace,
    cluster: ChaosCluster,
    browser: Any,
    engine: Engine,
    database_url: str,
    amqp_url: str,
    base: Base,
    gateway: SmsGatewayProcess,
) -> dict[str, Any]:
    """The four scenarios one after another, the idle tab open through the other three."""
    report: dict[str, Any] = {}
    idle = IdleTab(cluster, browser, engine, base, node='node1')
    log.info('scenario events')
    report['events'] = events_scenario(
        cluster,
        engine,
        amqp_url,
        base,
        total=args.events,
        rate=args.rate,
        broker_cut_s=args.broker_cut_s,
        database_outage_s=args.db_outage_s,
        broker_node='node2',
        killed_node=f'node{args.nodes}',
    )
    log.info('scenario mailing')
    system = services_system(database_url, engine)
    report['mailing'] = mailing_scenario(
        cluster, engine, system, gateway, base, gateway_down_s=args.gateway_down_s, killed_node='node2'
    )
    log.info('scenario reconnect')
    report['reconnect'] = reconnect_scenario(
        cluster, browser, engine, amqp_url, base, node=f'node{args.nodes}', spare='node1'
    )
    log.info('scenario idle')
    report['idle'] = idle.finish(amqp_url, idle_s=args.idle_s, session_idle_minutes=args.session_idle_minutes)
    report['cluster_log'] = _relative(cluster.events, cluster.created)
    report['servers_at_end'] = cluster.servers()
    return report


def _relative(events: list[dict[str, object]], t0: float) -> list[dict[str, object]]:
    return [event | {'at': round(float(str(event['at'])) - t0, 2)} for event in events]


if __name__ == '__main__':
    main()
