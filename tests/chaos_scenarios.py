"""The fault scenarios of ``make chaos`` (bench/chaos.py) and of tests/e2e/test_chaos.py, on a
``tests.chaos_cluster.ChaosCluster``. Each returns a JSON-able dict: what was published or asked for,
the effects counted in the database (SQL), lost, doubled, the fault timings, and ``passed``.

- ``events``: inbound events (calls, chat messages, payments, SMS delivery reports) published to RabbitMQ
  at a steady rate while one process's broker connection is cut, PostgreSQL is unreachable for every
  process, and one process is SIGKILLed and started again.
- ``mailing``: an SMS mailing to a segment while the gateway answers 503 and one process is SIGKILLed
  mid-way; what the gateway took, per message id.
- ``reconnect``: an operator's Chromium tab whose process is SIGKILLed; a call rings meanwhile.
- ``idle``: an operator's tab left alone (no reload expected), then a ring.

Every row a scenario makes carries a run tag, so runs can share a database (the test database).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pika
from sqlalchemy import Engine, insert, text
from sqlalchemy.orm import Session

from crm import bootstrap
from crm.config import Settings
from crm.db.engine import make_sessions
from crm.db.models import Borrower, BorrowerPhone, Communication, Loan, MessageTemplate, OutboxMessage, User
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.clock import RunningClock
from crm.integrations.bus import EVENTS_EXCHANGE
from crm.services.auth import to_actor
from crm.services.segments import Segment
from crm.services.sessions import SessionService
from tests.chaos_cluster import ChaosCluster, run_in_background
from tests.loopback import SmsGatewayProcess

START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)  # Wednesday, 12:00 in Moscow: the nodes' CRM_CLOCK_START
TEMPLATE = (
    '{{ name }}, по займу {{ loan_number }} просрочено {{ overdue_amount }}. Оплатите: {{ payment_link }} '
    '{{ creditor_name }}, тел. {{ contact_phone }}'
)
DEBT = Decimal(100_000)
PAYMENT = Decimal(10)
DEAD_QUEUE = 'crm.events.dead'
LIVE_PAGE_JS = (
    '!window.__chaos && window.did_handshake === true && !!window.socket && window.socket.connected'
)


@dataclass(frozen=True)
class Person:
    id: int
    login: str
    extension: str
    full_name: str


@dataclass
class Base:
    """What one run loaded: the tag in every key, the borrowers events name, users, the mailing segment."""

    tag: str
    loans: list[tuple[int, str, str]] = field(default_factory=list)  # (borrower id, phone, loan number)
    report_keys: list[str] = field(default_factory=list)  # outbox rows (sent) that delivery reports name
    mailing_city: str = ''
    mailing_size: int = 0
    template_id: int = 0
    supervisor_id: int = 0
    operators: list[Person] = field(default_factory=list)  # for the browser scenarios
    callers: list[tuple[int, str, str]] = field(default_factory=list)  # (borrower id, phone, full name)

    @property
    def load_extension(self) -> str:
        """The extension the event scenario's calls ring: nobody's (recorded, popped nowhere)."""
        return f'8{self.tag}'


def load_base(
    engine: Engine, *, borrowers: int, reports: int, mailing: int, operators: int = 2, tag: str | None = None
) -> Base:
    """Set-wise inserts, every key tagged (4 digits) so runs never collide."""
    tag = tag or f'{random.randrange(10_000):04d}'
    base = Base(tag, mailing_city=f'Хаосград {tag}', mailing_size=mailing)
    with engine.begin() as connection:
        ids = _borrowers(connection, tag, 0, borrowers, city=f'Хаосбург {tag}')
        base.loans = [(b, _phone(tag, i), f'ХС-{tag}-{i:05d}') for i, b in enumerate(ids)]
        connection.execute(insert(BorrowerPhone), [_phone_row(b, p) for b, p, _ in base.loans])
        connection.execute(insert(Loan), [_loan(b, n) for b, _, n in base.loans])
        if mailing:
            ids = _borrowers(connection, tag, 20_000, mailing, city=base.mailing_city)
            numbers = [(b, _phone(tag, 20_000 + i), f'ХМ-{tag}-{i:05d}') for i, b in enumerate(ids)]
            connection.execute(insert(BorrowerPhone), [_phone_row(b, p) for b, p, _ in numbers])
            connection.execute(insert(Loan), [_loan(b, n) for b, _, n in numbers])
        base.report_keys = _sent_messages(connection, tag, base.loans, reports)
        base.supervisor_id = _user(connection, f'chaos_sv_{tag}', 'Хаос Руководитель', Role.SUPERVISOR, None)
        base.template_id = connection.execute(
            insert(MessageTemplate).returning(MessageTemplate.id),
            {
                'channel': 'sms',
                'kind': 'overdue',
                'name': f'Хаос {tag}',
                'body': TEMPLATE,
                'active': True,
                'updated_at': START,
            },
        ).scalar_one()
        for n in range(operators):
            extension, name = f'7{tag}{n}', f'Операторова Хаоса {tag}-{n}'
            user_id = _user(connection, f'chaos_op_{tag}_{n}', name, Role.OPERATOR, extension)
            base.operators.append(Person(user_id, f'chaos_op_{tag}_{n}', extension, name))
            (caller,) = _borrowers(connection, tag, 40_000 + n, 1, city='Звонково', last=f'Звонящий{n}')
            phone = _phone(tag, 40_000 + n)
            connection.execute(insert(BorrowerPhone), [_phone_row(caller, phone)])
            base.callers.append((caller, phone, f'Звонящий{n} Хаос Петрович'))
    return base


def _phone(tag: str, i: int) -> str:
    return f'79{tag}{i:05d}'


def _phone_row(borrower_id: int, phone: str) -> dict[str, Any]:
    return {'borrower_id': borrower_id, 'phone': phone, 'kind': 'mobile', 'is_primary': True}


def _borrowers(
    connection: Any, tag: str, first: int, count: int, *, city: str, last: str = 'Хаосов'
) -> list[int]:
    rows = [
        {
            'pin': f'9{tag}{first + i:05d}',
            'last_name': last,
            'first_name': 'Хаос',
            'middle_name': 'Петрович',
            'search_name': f'{last.lower()} хаос петрович',
            'birth_date': date(1985, 1, 1) + timedelta(days=i % 7000),
            'city': city,
            'timezone': 'Europe/Moscow',
            'monthly_payment': Decimal(3000),
            'archived': False,
            'total_debt': DEBT,
            'overdue_amount': DEBT / 2,
            'days_past_due': 30,
            'created_at': START,
            'contact_refused': False,
            'representative_only': False,
            'bankrupt': False,
            'incapacitated': False,
        }
        for i in range(count)
    ]
    return list(connection.execute(insert(Borrower).returning(Borrower.id), rows).scalars())


def _loan(borrower_id: int, number: str) -> dict[str, Any]:
    return {
        'borrower_id': borrower_id,
        'number': number,
        'product': 'PDL До зарплаты',
        'amount': Decimal(30_000),
        'term_days': 30,
        'rate': Decimal('0.8'),
        'issued_on': date(2026, 9, 1),
        'due_on': date(2026, 10, 27),
        'state': 'active',
        'status_code': 3000,
        'status_name': 'Просрочка',
        'principal_outstanding': DEBT,
        'total_debt': DEBT,
        'overdue_amount': DEBT / 2,
        'days_past_due': 30,
    }


def _sent_messages(connection: Any, tag: str, loans: list[tuple[int, str, str]], count: int) -> list[str]:
    """Outbox rows the gateway took already (``sent``), with their communications: what reports name."""
    if not count:
        return []
    chosen = [loans[i % len(loans)] for i in range(count)]
    communications = connection.execute(
        insert(Communication).returning(Communication.id, sort_by_parameter_order=True),
        [
            {
                'borrower_id': b,
                'channel': 'sms',
                'direction': 'out',
                'started_at': START - timedelta(hours=1),
                'body': 'Хаос: отправлено',
                'delivery_status': 'sent',
                'collection': False,
                'phone': phone,
            }
            for b, phone, _ in chosen
        ],
    ).scalars()
    keys = [f'chaos-{tag}-dr-{i}' for i in range(count)]
    connection.execute(
        insert(OutboxMessage),
        [
            {
                'key': key,
                'channel': 'sms',
                'purpose': 'service',
                'status': 'sent',
                'borrower_id': b,
                'communication_id': communication_id,
                'to_address': phone,
                'body': 'Хаос: отправлено',
                'secret': False,
                'not_before': START - timedelta(hours=1),
                'expires_at': START + timedelta(days=3),
                'created_at': START - timedelta(hours=1),
                'attempts': 1,
                'gateway_id': f'gw-{key}',
                'sent_at': START - timedelta(hours=1),
            }
            for key, (b, phone, _), communication_id in zip(keys, chosen, communications, strict=True)
        ],
    )
    return keys


def _user(connection: Any, login: str, name: str, role: Role, extension: str | None) -> int:
    values = {
        'login': login,
        'full_name': name,
        'password_hash': '-',  # logs in by a ticket (SessionService.begin), never by password
        'role': role.value,
        'active': True,
        'extension': extension,
        'failed_logins': 0,
        'created_at': START,
    }
    return int(connection.execute(insert(User).returning(User.id), values).scalar_one())


# --- publishing -------------------------------------------------------------------------------------
def publish_paced(amqp_url: str, events: list[tuple[str, dict[str, Any]]], rate: float) -> dict[str, Any]:
    """Publish with publisher confirms at ``rate`` a second (the broker took each one: "published" is
    exact); reconnects if the broker connection drops. Returns the count and seconds."""
    started = time.monotonic()
    sent = 0
    properties = pika.BasicProperties(content_type='application/json', delivery_mode=2)
    while sent < len(events):
        try:
            connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
            channel = connection.channel()
            channel.confirm_delivery()
            while sent < len(events):
                due = started + sent / rate
                if (wait := due - time.monotonic()) > 0:
                    time.sleep(wait)
                routing_key, body = events[sent]
                channel.basic_publish(EVENTS_EXCHANGE, routing_key, json.dumps(body).encode(), properties)
                sent += 1
            connection.close()
        except pika.exceptions.AMQPError:
            time.sleep(0.5)  # a publish not confirmed is sent again: its id makes a repeat harmless
    return {'published': sent, 'publish_s': round(time.monotonic() - started, 2)}


def dead_letters(amqp_url: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        try:
            return channel.queue_declare(DEAD_QUEUE, passive=True).method.message_count or 0
        except pika.exceptions.ChannelClosedByBroker:
            return 0
    finally:
        connection.close()


def ring(cluster: ChaosCluster, amqp_url: str, call_id: str, phone: str, extension: str) -> None:
    """A call to ``extension`` now, by the cluster's clock (a ring minutes old would be one whose end
    was lost: a page drawn later does not put its card up)."""
    body = {
        'call_id': call_id,
        'from': phone,
        'to_extension': extension,
        'at': _cluster_now(cluster).isoformat(),
    }
    publish_paced(amqp_url, [('telephony.call.incoming', body)], rate=1000)


# --- 1. events --------------------------------------------------------------------------------------
SHARES = {'calls': 0.4, 'chats': 0.2, 'payments': 0.25, 'delivery_reports': 0.15}


def make_events(base: Base, total: int, seed: int = 12) -> list[tuple[str, dict[str, Any]]]:
    counts = {kind: int(total * share) for kind, share in SHARES.items()}
    counts['calls'] += total - sum(counts.values())
    counts['delivery_reports'] = min(counts['delivery_reports'], len(base.report_keys))
    counts['calls'] += total - sum(counts.values())
    tag, loans = base.tag, base.loans
    events: list[tuple[str, dict[str, Any]]] = []
    for n in range(counts['calls']):
        _, phone, _ = loans[n % len(loans)]
        body = {'call_id': f'chaos-{tag}-call-{n}', 'from': phone, 'to_extension': base.load_extension}
        events.append(('telephony.call.incoming', body | {'at': START.isoformat()}))
    for n in range(counts['chats']):
        b, phone, _ = loans[n % len(loans)]
        at = START + timedelta(milliseconds=n)
        body = {'chat_id': f'chaos-{tag}-chat-{b}', 'from': phone, 'text': f'хаос {tag} чат {n}'}
        events.append(('chat.message.received', body | {'at': at.isoformat()}))
    for n in range(counts['payments']):
        _, _, number = loans[n % len(loans)]
        body = {'payment_id': f'chaos-{tag}-pay-{n}', 'loan_number': number, 'amount': f'{PAYMENT}.00'}
        events.append(('loan.payment.received', body | {'at': START.isoformat()}))
    for key in base.report_keys[: counts['delivery_reports']]:
        events.append(('sms.status', {'message_id': key, 'status': 'delivered', 'at': START.isoformat()}))
    random.Random(seed).shuffle(events)
    return events


def count_effects(engine: Engine, base: Base) -> dict[str, dict[str, int]]:
    """Per kind: ``rows`` of effect found and ``distinct`` events they belong to — in SQL."""
    tag = base.tag
    borrowers = [b for b, _, _ in base.loans]
    queries: dict[str, tuple[str, dict[str, Any]]] = {
        'calls': (
            'SELECT count(*), count(DISTINCT call_id) FROM calls WHERE call_id LIKE :p',
            {'p': f'chaos-{tag}-call-%'},
        ),
        'call_history': (
            "SELECT count(*), count(DISTINCT call_id) FROM communications WHERE channel = 'call_in'"
            ' AND call_id LIKE :p',
            {'p': f'chaos-{tag}-call-%'},
        ),
        'chats': (
            "SELECT count(*), count(DISTINCT body) FROM communications WHERE channel = 'chat'"
            ' AND body LIKE :p',
            {'p': f'хаос {tag} чат %'},
        ),
        'payments': (
            'SELECT count(*), count(DISTINCT payment_id) FROM payments WHERE payment_id LIKE :p',
            {'p': f'chaos-{tag}-pay-%'},
        ),
        'payment_history': (
            "SELECT count(*), count(*) FROM communications WHERE channel = 'payment'"
            ' AND borrower_id = ANY(:ids)',
            {'ids': borrowers},
        ),
        'delivery_reports': (
            'SELECT count(*), count(DISTINCT key) FROM outbox_messages WHERE key LIKE :p'
            " AND status = 'delivered'",
            {'p': f'chaos-{tag}-dr-%'},
        ),
    }
    found: dict[str, dict[str, int]] = {}
    with engine.connect() as connection:
        for kind, (sql, params) in queries.items():
            rows, distinct = connection.execute(text(sql), params).one()
            found[kind] = {'rows': int(rows), 'distinct': int(distinct)}
        lowered = connection.execute(
            text('SELECT coalesce(sum(:debt - total_debt), 0) FROM loans WHERE number LIKE :p'),
            {'debt': DEBT, 'p': f'ХС-{tag}-%'},
        ).scalar_one()
    found['debt_lowered_by'] = {'rows': int(Decimal(lowered) / PAYMENT), 'distinct': 0}
    return found


def events_scenario(
    cluster: ChaosCluster,
    engine: Engine,
    amqp_url: str,
    base: Base,
    *,
    total: int,
    rate: float,
    broker_cut_s: float,
    database_outage_s: float,
    broker_node: str,
    killed_node: str,
    settle_s: float = 180.0,
) -> dict[str, Any]:
    """Publish ``total`` events over ``total / rate`` seconds; meanwhile (from the first publish): at 10 %
    the broker connection of ``broker_node`` is cut for ``broker_cut_s``; at 30 % PostgreSQL goes away
    from every node for ``database_outage_s``; a second after it is back, ``killed_node`` is SIGKILLed
    and started again. Then wait until every effect is in or ``settle_s`` pass without progress."""
    events = make_events(base, total)
    published = {kind: 0 for kind in SHARES}
    kinds = {
        'telephony.call.incoming': 'calls',
        'chat.message.received': 'chats',
        'loan.payment.received': 'payments',
        'sms.status': 'delivery_reports',
    }
    for routing_key, _ in events:
        published[kinds[routing_key]] += 1
    dead_before = dead_letters(amqp_url)
    deadlocks_before = cluster.count_in_logs('DeadlockDetected: deadlock detected')
    redeliveries_before = cluster.count_in_logs('redelivering in')
    duration = len(events) / rate
    t0 = time.monotonic()
    faults: dict[str, Any] = {}

    def at(fraction: float) -> None:
        time.sleep(max(0.0, t0 + duration * fraction - time.monotonic()))

    def broker_cut() -> None:
        at(0.1)
        faults['broker_cut'] = {'node': broker_node, 'from_s': _since(t0), 'seconds': broker_cut_s}
        cluster.cut_broker(broker_node, broker_cut_s)

    def database_then_kill() -> None:
        at(0.3)
        faults['database_unreachable'] = {'from_s': _since(t0), 'seconds': database_outage_s}
        cluster.cut_database(database_outage_s)
        time.sleep(1.0)
        faults['sigkill'] = {'node': killed_node, 'at_s': _since(t0)}
        cluster.kill(killed_node)
        cluster.start(killed_node)
        faults['sigkill']['up_again_after_s'] = round(cluster.wait_up(killed_node), 2)

    threads = [run_in_background(broker_cut), run_in_background(database_then_kill)]
    publishing = publish_paced(amqp_url, events, rate)
    for thread in threads:
        thread.join()
    found, settled_s = _settle(lambda: count_effects(engine, base), published, t0, settle_s)
    dead = dead_letters(amqp_url) - dead_before
    deadlocks = cluster.count_in_logs('DeadlockDetected: deadlock detected') - deadlocks_before
    redeliveries = cluster.count_in_logs('redelivering in') - redeliveries_before
    kinds_report = _by_kind(published, found)
    lost = sum(k['lost'] for k in kinds_report.values())
    doubled = sum(k['doubled'] for k in kinds_report.values())
    servers = cluster.servers()
    return {
        'published': len(events),
        'rate_per_s': rate,
        **publishing,
        'by_kind': kinds_report,
        'lost': lost,
        'doubled': doubled,
        'dead_lettered': dead,
        'batches_redelivered': redeliveries,  # a failed transaction: nacked, nothing of it written
        'deadlocks_in_logs': deadlocks,
        'all_effects_after_s': settled_s,
        'faults': faults,
        'servers_after': servers,
        'passed': lost == 0 and doubled == 0 and dead == 0,
    }


def _by_kind(published: dict[str, int], found: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Per kind of event: published, effects found, lost, doubled (a second row, history line or debt
    decrease for one event)."""
    report: dict[str, dict[str, int]] = {}
    for kind, sent in published.items():
        distinct = found[kind]['distinct']
        doubled = found[kind]['rows'] - distinct
        if kind == 'calls':
            doubled += found['call_history']['rows'] - found['call_history']['distinct']
        if kind == 'payments':
            doubled += max(0, found['payment_history']['rows'] - distinct)
            doubled += max(0, found['debt_lowered_by']['rows'] - distinct)
        report[kind] = {'published': sent, 'effects': distinct, 'lost': sent - distinct, 'doubled': doubled}
    return report


def _since(t0: float) -> float:
    return round(time.monotonic() - t0, 2)


def _settle(
    count: Callable[[], dict[str, dict[str, int]]], wanted: dict[str, int], t0: float, patience_s: float
) -> tuple[dict[str, dict[str, int]], float | None]:
    """Count until every kind has its effects, or nothing moved for ``patience_s``."""
    last, moved = None, time.monotonic()
    while True:
        found = count()
        if all(found[kind]['distinct'] >= n for kind, n in wanted.items()):
            return found, _since(t0)
        snapshot = json.dumps(found, sort_keys=True)
        if snapshot != last:
            last, moved = snapshot, time.monotonic()
        elif time.monotonic() - moved > patience_s:
            return found, None
        time.sleep(1.0)


# --- 2. the mailing ---------------------------------------------------------------------------------
def services_system(database_url: str, engine: Engine) -> bootstrap.System:
    """The services in this process (no workers started): to create the mailing as a supervisor would."""
    settings = Settings(database_url=database_url, amqp_url=None, pbx_simulator=False, demo=False)
    return bootstrap.build(settings, engine=engine, clock=RunningClock(START), dispatcher=False)


def mailing_scenario(
    cluster: ChaosCluster,
    engine: Engine,
    system: bootstrap.System,
    gateway: SmsGatewayProcess,
    base: Base,
    *,
    gateway_down_s: float,
    killed_node: str,
    settle_s: float = 180.0,
) -> dict[str, Any]:
    """A mailing to ``base.mailing_size`` borrowers: the gateway answers 503 from the moment it is made for
    ``gateway_down_s``; ``killed_node`` is SIGKILLed when a third of the messages are sent, and started
    again. Every outbox row must end ``sent`` and the gateway must have taken each id once."""
    before = gateway.stats()
    supervisor = _actor(engine, base.supervisor_id)
    t0 = time.monotonic()
    gateway.fail_for(gateway_down_s)
    mailing = system.services.mailings.create(
        supervisor, f'Хаос {base.tag}', 'sms', base.template_id, Segment(cities=(base.mailing_city,))
    )
    faults: dict[str, Any] = {'gateway_503': {'from_s': 0.0, 'seconds': gateway_down_s}}
    total = base.mailing_size

    killed = False
    last, moved, finished_s = '', time.monotonic(), None
    while True:
        now = _outbox_statuses(engine, mailing.id)
        done = now.get('sent', 0) + now.get('delivered', 0)
        if not killed and done >= total / 3:
            killed = True
            faults['sigkill'] = {'node': killed_node, 'at_s': _since(t0), 'sent_before': done}
            cluster.kill(killed_node)
            cluster.start(killed_node)
            faults['sigkill']['up_again_after_s'] = round(cluster.wait_up(killed_node), 2)
            continue
        if done >= total and killed:
            finished_s = _since(t0)
            break
        if json.dumps(now) != last:
            last, moved = json.dumps(now), time.monotonic()
        elif time.monotonic() - moved > settle_s:
            break
        time.sleep(0.5)
    keys = _outbox_keys(engine, mailing.id)
    after = gateway.stats()
    taken = [(id_, to) for id_, to in gateway.accepted() if id_ in keys]
    taken_ids = {id_ for id_, _ in taken}
    final = _outbox_statuses(engine, mailing.id)
    sent_rows = final.get('sent', 0) + final.get('delivered', 0)
    repeats = after['duplicates'] - before['duplicates']
    return {
        'messages': total,
        'outbox_rows': sum(final.values()),
        'outbox_by_status': final,
        'gateway_requests': after['requests'] - before['requests'],
        'gateway_took': len(taken),
        'gateway_took_distinct_ids': len(taken_ids),
        'gateway_distinct_recipients': len({to for _, to in taken}),
        'gateway_repeat_posts': repeats,  # a resend of an id taken already: the gateway sends no second SMS
        'lost': total - len(taken_ids & keys),
        'doubled': len(taken) - len(taken_ids),
        'all_sent_after_s': finished_s,
        'faults': faults,
        'passed': sent_rows == total == len(taken_ids) == len(keys) == len({to for _, to in taken}),
    }


def _outbox_statuses(engine: Engine, mailing_id: int) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            text('SELECT status, count(*) FROM outbox_messages WHERE mailing_id = :m GROUP BY status'),
            {'m': mailing_id},
        )
        return {status: int(n) for status, n in rows}


def _outbox_keys(engine: Engine, mailing_id: int) -> set[str]:
    with engine.connect() as connection:
        query = text('SELECT key FROM outbox_messages WHERE mailing_id = :m')
        return set(connection.execute(query, {'m': mailing_id}).scalars())


# --- 3 and 4. browsers ------------------------------------------------------------------------------
def log_in_by_ticket(page: Any, cluster: ChaosCluster, engine: Engine, person: Person, node: str) -> None:
    """A login as a password would make it (a session in the database), the browser pinned to ``node``."""
    clock = RunningClock(_cluster_now(cluster))
    ticket = SessionService(make_sessions(engine, clock), clock=clock).begin(_actor(engine, person.id))
    page.context.add_cookies([{'name': 'CRM_NODE', 'value': node, 'url': cluster.url}])
    page.goto(f'{cluster.url}/login/complete?ticket={ticket}&redirect_to=/')
    page.wait_for_url(lambda url: '/login' not in url, timeout=30_000)
    page.wait_for_function(LIVE_PAGE_JS, timeout=30_000)
    page.evaluate('window.__chaos = 1')  # gone if the page is ever loaded again


def _actor(engine: Engine, user_id: int) -> Actor:
    with Session(engine) as session:
        user = session.get(User, user_id)
        assert user is not None
        return to_actor(user)


def _cluster_now(cluster: ChaosCluster) -> datetime:
    return (cluster.clock_start or START) + timedelta(seconds=time.monotonic() - cluster.created)


def node_cookie(page: Any) -> str | None:
    return next((c['value'] for c in page.context.cookies() if c['name'] == 'CRM_NODE'), None)


def shows_call(page: Any, caller_name: str, timeout_s: float) -> tuple[bool, bool]:
    """(the call panel rings with the caller's name, the caller's card is drawn), waiting ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    panel = card = False
    while time.monotonic() < deadline and not (panel and card):
        try:
            state = page.get_by_test_id('call-state')
            panel = state.count() > 0 and 'Входящий звонок' in (state.first.inner_text(timeout=1000) or '')
            panel = panel and caller_name in page.locator('body').inner_text(timeout=1000)
            name = page.get_by_test_id('borrower-name')
            card = name.count() > 0 and name.first.inner_text(timeout=1000).strip() == caller_name
        except Exception:  # the page is being replaced: look again
            pass
        if not (panel and card):
            time.sleep(0.1)
    return panel, card


def reconnect_scenario(
    cluster: ChaosCluster,
    browser: Any,
    engine: Engine,
    amqp_url: str,
    base: Base,
    *,
    node: str,
    spare: str | None = None,
) -> dict[str, Any]:
    """An operator's tab on ``node`` (HAProxy may place it elsewhere if its checks have ``node`` down:
    then the process it is on is killed, unless that is ``spare``); SIGKILL it and ring the operator at
    once. Measured: the seconds until the tab is a live page again (loaded anew, logged in, its websocket
    connected) on another node, and whether the call that rang meanwhile is on the screen."""
    person, (_, phone, caller_name) = base.operators[0], base.callers[0]
    try:
        routed: float | None = round(cluster.wait_routed(node, timeout=20.0), 2)
    except RuntimeError:  # HAProxy still has it down: the tab lands on another process, which is killed
        routed = None
    context = browser.new_context(viewport={'width': 1440, 'height': 900}, locale='ru-RU')
    try:
        page = context.new_page()
        log_in_by_ticket(page, cluster, engine, person, node)
        home = node_cookie(page)
        if home in cluster.nodes and home != spare:
            node = home
        t0 = time.monotonic()
        cluster.kill(node)
        ring(cluster, amqp_url, f'chaos-{base.tag}-reconnect', phone, person.extension)
        rang_s = _since(t0)
        live_s: float | None = None
        try:
            page.wait_for_function(LIVE_PAGE_JS, timeout=60_000, polling=50)
            live_s = _since(t0)
        except Exception:
            pass
        logged_in = '/login' not in page.url
        panel, card = shows_call(page, caller_name, 15.0)
        shown_s = _since(t0) if panel else None
        moved_to = node_cookie(page)
    finally:
        context.close()
        cluster.start(node)
        up_s = cluster.wait_up(node)
    return {
        'haproxy_had_wanted_node_up_after_s': routed,
        'operator_node': home,
        'killed': node,
        'moved_to': moved_to,
        'rang_after_kill_s': rang_s,
        'live_again_after_s': live_s,
        'logged_in': logged_in,
        'call_panel_shown': panel,
        'caller_card_shown': card,
        'call_on_screen_after_s': shown_s,
        'node_up_again_after_s': round(up_s, 2),
        'target_s': 5.0,
        'passed': live_s is not None and live_s <= 5.0 and logged_in and panel and card and moved_to != node,
    }


class IdleTab:
    """An operator's tab opened now on ``node`` and left alone until ``finish``."""

    def __init__(self, cluster: ChaosCluster, browser: Any, engine: Engine, base: Base, *, node: str) -> None:
        self.cluster, self.base, self.node = cluster, base, node
        self.person, self.caller = base.operators[1], base.callers[1]
        self.context = browser.new_context(viewport={'width': 1440, 'height': 900}, locale='ru-RU')
        self.page = self.context.new_page()
        log_in_by_ticket(self.page, cluster, engine, self.person, node)
        self.opened = time.monotonic()

    def finish(self, amqp_url: str, *, idle_s: float, session_idle_minutes: float | None) -> dict[str, Any]:
        """Wait until the tab was idle ``idle_s`` (Playwright's own calls keep the page busy, so this only
        sleeps), then ring the operator: no page load may have happened, and the pop must arrive."""
        try:
            while (left := self.opened + idle_s - time.monotonic()) > 0:
                self.page.wait_for_timeout(min(left, 30.0) * 1000)  # keeps Playwright's connection alive
            idled = round(time.monotonic() - self.opened, 1)
            loads = self.page.evaluate("performance.getEntriesByType('navigation').length")
            marker = bool(self.page.evaluate('window.__chaos === 1'))
            on_login = '/login' in self.page.url
            t0 = time.monotonic()
            _, phone, caller_name = self.caller
            ring(self.cluster, amqp_url, f'chaos-{self.base.tag}-idle', phone, self.person.extension)
            panel, card = shows_call(self.page, caller_name, 15.0)
            pop_s = _since(t0) if panel and card else None
            still = bool(self.page.evaluate('window.__chaos === 1'))
        finally:
            self.context.close()
        return {
            'node': self.node,
            'idle_s': idled,
            'session_idle_minutes': session_idle_minutes,
            'reloaded': not (marker and still) or loads != 1,
            'on_login_page': on_login,
            'pop_shown_after_s': pop_s,
            'passed': marker and still and loads == 1 and not on_login and pop_s is not None,
        }
