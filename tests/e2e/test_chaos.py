"""Faults survived, in CI's time (issue 12 §3; ``make chaos`` runs the same scenarios bigger).

Three app processes behind a real HAProxy on PostgreSQL and RabbitMQ, each through TCP proxies of its
own (tests/chaos_cluster.py). 1,000 inbound events while a broker connection is cut, the database is away
for 5 s and a process is SIGKILLed; a mailing of 500 SMS while the gateway answers 503 for 10 s and a
process is SIGKILLed; an operator's tab whose process is SIGKILLed while a call rings; an operator's tab
left alone through all of it, with HAProxy cutting its idle websocket every few seconds.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pika
import pytest
from pika.exceptions import AMQPError
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from crm.db.engine import make_engine
from crm.db.migrate import upgrade
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
from tests.conftest import need_service
from tests.harness import drop_database, purge_events_queue, sibling_database
from tests.loopback import SmsGatewayProcess

pytestmark = [pytest.mark.postgres, pytest.mark.browser]


@dataclass
class Chaos:
    cluster: ChaosCluster
    engine: Engine
    database_url: str
    amqp_url: str
    base: Base
    gateway: SmsGatewayProcess
    idle: IdleTab | None = None


@pytest.fixture(scope='module')
def chaos(database_url: str, browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chaos]:
    if make_url(database_url).get_backend_name() != 'postgresql':
        need_service('a cluster needs PostgreSQL: set CRM_TEST_DATABASE_URL')
    if not (shutil.which('haproxy') or shutil.which('haproxy', path='/usr/sbin')):
        need_service('the haproxy binary is not installed (apt-get install haproxy)')
    amqp_url = os.environ.get('CRM_TEST_AMQP_URL') or ''
    if not amqp_url:
        need_service('RabbitMQ: set CRM_TEST_AMQP_URL')
    try:
        pika.BlockingConnection(pika.URLParameters(amqp_url)).close()
    except AMQPError as error:
        need_service(f'RabbitMQ at CRM_TEST_AMQP_URL is unreachable: {error!r}')
    purge_events_queue(amqp_url)  # what earlier modules' apps left
    # thousands of events, a mailing and operators' states: in a database of its own, not the suite's
    database_url = sibling_database(database_url, 'chaos')
    upgrade(database_url)
    engine = make_engine(database_url)
    base = load_base(engine, borrowers=200, reports=200, mailing=500)
    env = {
        'CRM_DEMO': '0',
        'CRM_CLOCK_START': START.isoformat(),
        'CRM_SMS_PER_SECOND': '100',
        'CRM_OUTBOX_LEASE_S': '10',  # a row the killed process held is sent again after 10 s, not 60
        'CRM_SECRET': 'chaos-secret',
    }
    with SmsGatewayProcess() as gateway:
        env |= {'CRM_SMS_GATEWAY_URL': gateway.url, 'CRM_SMS_GATEWAY_TOKEN': gateway.token or ''}
        with chaos_cluster(
            nodes=3,
            database_url=database_url,
            amqp_url=amqp_url,
            var_dir=tmp_path_factory.mktemp('chaos'),
            env=env,
            tunnel_timeout='5s',  # shorter than NiceGUI's 8 s ping: HAProxy cuts an idle websocket
        ) as cluster:
            state = Chaos(cluster, engine, database_url, amqp_url, base, gateway)
            state.idle = IdleTab(cluster, browser, engine, base, node='node1')  # never killed
            yield state
    engine.dispose()
    purge_events_queue(amqp_url)  # nothing of it for the modules after this one
    drop_database(database_url)


def test_every_event_has_one_effect_through_a_broker_cut_a_database_outage_and_a_kill(chaos: Chaos) -> None:
    report = events_scenario(
        chaos.cluster,
        chaos.engine,
        chaos.amqp_url,
        chaos.base,
        total=1000,
        rate=100,
        broker_cut_s=3,
        database_outage_s=5,
        broker_node='node2',
        killed_node='node3',
        settle_s=60,
    )
    assert report['lost'] == 0 and report['doubled'] == 0, report
    assert report['dead_lettered'] == 0, report
    assert report['passed'], report


def test_a_mailing_sends_each_sms_once_through_503s_and_a_kill(chaos: Chaos) -> None:
    system = services_system(chaos.database_url, chaos.engine)
    report = mailing_scenario(
        chaos.cluster, chaos.engine, system, chaos.gateway, chaos.base, gateway_down_s=10, killed_node='node2'
    )
    assert report['outbox_by_status'] == {'sent': 500}, report
    assert report['gateway_took_distinct_ids'] == report['gateway_distinct_recipients'] == 500, report
    assert report['passed'], report


def test_a_killed_process_s_operator_is_live_elsewhere_within_5_s_with_the_call_that_rang(
    chaos: Chaos, browser: Any
) -> None:
    report = reconnect_scenario(
        chaos.cluster, browser, chaos.engine, chaos.amqp_url, chaos.base, node='node3', spare='node1'
    )
    assert report['logged_in'] and report['moved_to'] != report['killed'], report
    assert report['call_panel_shown'] and report['caller_card_shown'], report
    assert report['live_again_after_s'] is not None and report['live_again_after_s'] <= 5.0, report


def test_an_idle_tab_is_not_reloaded_and_still_gets_its_pop(chaos: Chaos) -> None:
    assert chaos.idle is not None
    report = chaos.idle.finish(chaos.amqp_url, idle_s=20, session_idle_minutes=None)
    assert not report['reloaded'] and not report['on_login_page'], report
    assert report['pop_shown_after_s'] is not None, report
