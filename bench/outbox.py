"""Mass mailings: the segment + 230-FZ check of 100,000 borrowers, and 10,000 SMS sent end to end.

1. **Check**: ``MailingService.preview`` of a segment holding every one of ``--borrowers`` (100,000)
   borrowers — the segment's statement, the ledger of counted messages, the verdicts — ``--runs`` times,
   and where its time goes (the same three stages timed apart).
2. **Send**: a mailing to ``--messages`` (10,000) of them, created through ``MailingService.create``,
   queued by ``MailingWorker`` and sent by ``OutboxDispatcher`` through ``HttpSmsGateway`` to a real HTTP
   gateway on loopback in a child process (``tests.loopback.SmsGatewayProcess``), both workers in their
   own threads as in the app. Messages/s = messages ÷ (the mailing created → its last row ``sent``,
   polled every 10 ms). The cluster's SMS rate is set to ``--rate`` (100,000/s) so that it does not bind.
   Then ``apart``: a second mailing to the same borrowers (each then has one message today, still within
   the law), queued by the worker alone and then sent by the dispatcher alone — what each stage costs.

The base is generated set-wise (Core ``executemany``): borrowers in 15 time zones, 95 % with a mobile
phone, 60 % overdue, 2 % with a legal flag, a fifth of the overdue ones with 1–3 counted SMS in the last
ten days (some today), one loan each. The services run on a clock that starts on Wednesday 26.11.2026
at 12:00 Moscow time, so the figures do not depend on the hour the bench runs.

PostgreSQL when CRM_BENCH_DATABASE_URL is set — in a database of its own next to that one, named
``<name>_outbox``, which **this script owns** (dropped and made anew every run); SQLite in
var/bench/outbox.sqlite3 otherwise. Logs go to stderr; stdout gets exactly one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.harness, tests.loopback

from crm import bootstrap
from crm.config import Settings
from crm.db.engine import make_engine, make_sessions
from crm.db.migrate import upgrade
from crm.db.models import (
    Borrower,
    BorrowerPhone,
    Communication,
    Loan,
    Mailing,
    MessageTemplate,
    OutboxMessage,
    User,
)
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.clock import RunningClock
from crm.domain.messages import MessageChannel
from crm.integrations.bus import RecordingBus
from crm.integrations.mail import RecordingMailer
from crm.integrations.sms_http import HttpSmsGateway
from crm.services.mailing_law import LawCheck, segment_ledger
from crm.services.mailing_worker import BATCH_SIZE, MailingWorker
from crm.services.notifier import Notifier
from crm.services.outbox_dispatcher import DispatchPolicy, OutboxDispatcher
from crm.services.segments import Segment, flags_of, segment_query, usable_address
from tests.harness import bench_database_url, machine
from tests.loopback import SmsGatewayProcess

log = logging.getLogger('bench.outbox')

SQLITE_PATH = Path(__file__).resolve().parent.parent / 'var' / 'bench' / 'outbox.sqlite3'
START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)  # Wednesday, 12:00 in Moscow
SEND_CITY = 'Бенчград'  # the mailing's segment: Moscow time, overdue, nothing counted yet
ZONES = [
    ('Калининград', 'Europe/Kaliningrad'),
    ('Москва', 'Europe/Moscow'),
    ('Самара', 'Europe/Samara'),
    ('Екатеринбург', 'Asia/Yekaterinburg'),
    ('Омск', 'Asia/Omsk'),
    ('Новосибирск', 'Asia/Novosibirsk'),
    ('Красноярск', 'Asia/Krasnoyarsk'),
    ('Иркутск', 'Asia/Irkutsk'),
    ('Якутск', 'Asia/Yakutsk'),
    ('Владивосток', 'Asia/Vladivostok'),
    ('Магадан', 'Asia/Magadan'),
    ('Петропавловск-Камчатский', 'Asia/Kamchatka'),
    ('Волгоград', 'Europe/Volgograd'),
    ('Барнаул', 'Asia/Barnaul'),
    ('Уфа', 'Asia/Yekaterinburg'),
]
PRODUCTS = ['PDL До зарплаты', 'Потреб Лайт', 'IL Стандарт', 'ILS ГлавПотреб']
TEMPLATE = (
    '{{ name }}, по займу {{ loan_number }} просрочено {{ overdue_amount }}. Оплатите: {{ payment_link }} '
    '{{ creditor_name }}, тел. {{ contact_phone }}'
)
CHUNK = 10_000
DISPATCH = DispatchPolicy(sms_sender='DEMOZAIM', poll_seconds=0.05)  # the rate is set from --rate


def database_url() -> str:
    return bench_database_url('outbox', SQLITE_PATH)


# --- the base ---------------------------------------------------------------------------------------
def load(engine: Engine, borrowers: int, sends: int, seed: int) -> dict[str, int]:
    """Borrowers, their phones, loans and counted messages, set-wise; the first ``sends`` are the
    mailing's segment. Returns what was loaded."""
    rng = random.Random(seed)
    counts = {'borrowers': 0, 'phones': 0, 'loans': 0, 'counted_messages': 0}
    with engine.begin() as connection:
        for first in range(1, borrowers + 1, CHUNK):
            ids = range(first, min(first + CHUNK, borrowers + 1))
            rows = [_borrower(rng, i, i <= sends) for i in ids]
            connection.execute(insert(Borrower), rows)
            phones = [
                {'borrower_id': r['id'], 'phone': f'79{r["id"]:09d}', 'kind': kind, 'is_primary': True}
                for r in rows
                for kind in [('mobile' if r['id'] <= sends or rng.random() < 0.95 else 'home')]
            ]
            connection.execute(insert(BorrowerPhone), phones)
            connection.execute(insert(Loan), [_loan(rng, r) for r in rows])
            ledger = [m for r in rows if r['id'] > sends for m in _counted(rng, r)]
            if ledger:
                connection.execute(insert(Communication), ledger)
            counts['borrowers'] += len(rows)
            counts['phones'] += len(phones)
            counts['loans'] += len(rows)
            counts['counted_messages'] += len(ledger)
        connection.execute(
            insert(User),
            {
                'login': 'bench_supervisor',
                'full_name': 'Руководитель Бенча',
                'password_hash': '-',  # never logs in
                'role': Role.SUPERVISOR.value,
                'active': True,
                'failed_logins': 0,
                'created_at': START,
            },
        )
        connection.execute(
            insert(MessageTemplate),
            {
                'channel': 'sms',
                'kind': 'overdue',
                'name': 'Бенч: просрочка',
                'body': TEMPLATE,
                'active': True,
                'updated_at': START,
            },
        )
    if engine.dialect.name == 'postgresql':
        with engine.connect().execution_options(isolation_level='AUTOCOMMIT') as connection:
            connection.execute(text('VACUUM ANALYZE'))
    return counts


def _borrower(rng: random.Random, i: int, sending: bool) -> dict[str, Any]:
    city, zone = (SEND_CITY, 'Europe/Moscow') if sending else rng.choice(ZONES)
    overdue = sending or rng.random() < 0.6
    dpd = rng.randint(1, 120) if overdue else 0
    amount = Decimal(rng.randint(1_000, 90_000)) if overdue else Decimal(0)
    flag = None if sending or rng.random() >= 0.02 else rng.choice(['bankrupt', 'contact_refused'])
    contact = (
        None if rng.random() < 0.3 else START - timedelta(days=rng.randint(0, 60), hours=rng.randint(0, 23))
    )
    return {
        'id': i,
        'pin': f'{5_000_000_000 + i}',
        'last_name': 'Бенчев',
        'first_name': 'Иван',
        'middle_name': 'Петрович',
        'search_name': 'бенчев иван петрович',
        'birth_date': date(1985, 1, 1) + timedelta(days=i % 7000),
        'city': city,
        'timezone': zone,
        'monthly_payment': Decimal(3000),
        'archived': False,
        'total_debt': amount + Decimal(5000),
        'overdue_amount': amount,
        'days_past_due': dpd,
        'last_contact_at': contact,
        'created_at': START,
        'contact_refused': flag == 'contact_refused',
        'representative_only': False,
        'bankrupt': flag == 'bankrupt',
        'incapacitated': False,
    }


def _loan(rng: random.Random, borrower: dict[str, Any]) -> dict[str, Any]:
    dpd = borrower['days_past_due']
    return {
        'borrower_id': borrower['id'],
        'number': f'БН-{borrower["id"]:08d}',
        'product': rng.choice(PRODUCTS),
        'amount': Decimal(30_000),
        'term_days': 30,
        'rate': Decimal('0.8'),
        'issued_on': date(2026, 6, 1),
        'due_on': date(2026, 11, 26) - timedelta(days=dpd),
        'state': 'active',
        'status_code': 3000 if dpd else 2100,
        'status_name': 'Просрочка' if dpd else 'Платёж по графику',
        'principal_outstanding': borrower['total_debt'],
        'total_debt': borrower['total_debt'],
        'overdue_amount': borrower['overdue_amount'],
        'days_past_due': dpd,
    }


def _counted(rng: random.Random, borrower: dict[str, Any]) -> list[dict[str, Any]]:
    """1–3 collection SMS in the last ten days for a fifth of the overdue borrowers (some today)."""
    if not borrower['days_past_due'] or rng.random() >= 0.2:
        return []
    return [
        {
            'borrower_id': borrower['id'],
            'channel': 'sms',
            'direction': 'out',
            'started_at': START - timedelta(days=rng.choice([0, 0, 1, 3, 6, 9]), minutes=rng.randint(1, 180)),
            'body': 'Ранее',
            'delivery_status': 'delivered',
            'collection': True,
        }
        for _ in range(rng.randint(1, 3))
    ]


# --- 1. the check -----------------------------------------------------------------------------------
def check(system: bootstrap.System, actor: Actor, runs: int) -> dict[str, Any]:
    mailings = system.services.mailings
    times, preview = [], None
    for _ in range(runs):
        started = time.perf_counter()
        preview = mailings.preview(actor, Segment(), 'sms')
        times.append((time.perf_counter() - started) * 1000)
    assert preview is not None
    return {
        'what': 'MailingService.preview of a segment of every borrower (SMS): statement, ledger, verdicts',
        'runs_ms': [round(t, 1) for t in times],
        'best_ms': round(min(times), 1),
        'median_ms': round(statistics.median(times), 1),
        'in_segment': preview.in_segment,
        'with_address': preview.with_address,
        'allowed_now': preview.allowed_now,
        'held_today': preview.held_today,
        'held_later': preview.held_later,
        'held': {r.rule: r.count for r in preview.held},
        'refused': {r.rule: r.count for r in preview.refused},
        'stages_ms': stages(system),
    }


def stages(system: bootstrap.System) -> dict[str, Any]:
    """The preview's three stages timed apart, as ``preview_segment`` runs them."""
    sessions = make_sessions(system.engine, system.services.clock)
    now = system.services.clock()
    law = LawCheck(system.services.compliance.message_limits, now, timedelta(hours=72))
    with sessions() as session:
        started = time.perf_counter()
        rows = session.execute(segment_query(Segment(), MessageChannel.SMS, now, joined=True)).all()
        fetched = time.perf_counter()
        reachable = [r for r in rows if usable_address(MessageChannel.SMS, r.address) is not None]
        ledger = segment_ledger(session, Segment(), now)
        ledgered = time.perf_counter()
        for row in reachable:
            law.decide(row.timezone, row.days_past_due > 0, flags_of(row), ledger.get(row.id, ()))
        decided = time.perf_counter()
    return {
        'segment_statement': round((fetched - started) * 1000, 1),
        'ledger': round((ledgered - fetched) * 1000, 1),
        'ledger_borrowers': len(ledger),
        'verdicts': round((decided - ledgered) * 1000, 1),
        'distinct_verdicts': len(law._memo),
    }


# --- 2. the send ------------------------------------------------------------------------------------
def send(system: bootstrap.System, actor: Actor, messages: int, rate: float) -> dict[str, Any]:
    """The mailing end to end with both workers running, then another one with each alone."""
    with SmsGatewayProcess() as gateway:
        together = _together(system, actor, gateway, messages, rate)
        apart = _apart(system, actor, gateway, messages, rate)
        stats = gateway.stats()
    return {
        'what': 'MailingService.create → MailingWorker → OutboxDispatcher → HttpSmsGateway → loopback',
        **together,
        'apart': apart,
        'gateway': stats,  # both mailings: accepted = 2 × messages, duplicates 0
        'rate_limit_per_s': rate,
        'dispatcher': {'batch': DISPATCH.batch, 'concurrency': DISPATCH.concurrency, 'poll_s': 0.05},
        'worker': {'batch': BATCH_SIZE, 'poll_s': 0.05},
    }


def _parts(
    system: bootstrap.System, gateway: SmsGatewayProcess, rate: float
) -> tuple[MailingWorker, OutboxDispatcher, HttpSmsGateway]:
    clock = system.services.clock
    sessions = make_sessions(system.engine, clock)
    notifier = Notifier(RecordingBus())
    sms = HttpSmsGateway(gateway.url, gateway.token)
    policy = replace(DISPATCH, rates={'sms': rate})
    dispatcher = OutboxDispatcher(
        sessions,
        sms=sms,
        mail=RecordingMailer(),
        compliance=system.services.compliance,
        notifier=notifier,
        policy=policy,
        clock=clock,
    )
    creditor = bootstrap.creditor_of(system.settings)
    worker = MailingWorker(
        sessions, system.services.compliance, creditor, notifier, clock=clock, interval=0.05
    )
    return worker, dispatcher, sms


def _mailing(system: bootstrap.System, actor: Actor, name: str) -> int:
    with system.engine.connect() as connection:
        template_id = connection.scalar(select(MessageTemplate.id))
    segment = Segment(cities=(SEND_CITY,))
    return system.services.mailings.create(actor, name, 'sms', template_id, segment).id


def _together(
    system: bootstrap.System, actor: Actor, gateway: SmsGatewayProcess, messages: int, rate: float
) -> dict[str, Any]:
    """Both workers in their threads, as in the app: from the mailing made to its last row sent."""
    worker, dispatcher, sms = _parts(system, gateway, rate)
    dispatcher.start()
    worker.start()
    try:
        started = time.perf_counter()
        mailing_id = _mailing(system, actor, 'Бенч')
        queued_s, sent_s = _watch(system.engine, mailing_id, messages, started)
    finally:
        worker.stop()
        dispatcher.stop()
        sms.close()
    return {
        'messages': messages,
        'seconds': round(sent_s, 2),
        'messages_per_s': round(messages / sent_s, 1),
        'all_queued_after_s': round(queued_s, 2),
    }


def _apart(
    system: bootstrap.System, actor: Actor, gateway: SmsGatewayProcess, messages: int, rate: float
) -> dict[str, Any]:
    """A second mailing to the same borrowers (one message today each: still within the law), queued by
    the worker alone, then sent by the dispatcher alone: what each stage costs by itself."""
    worker, dispatcher, sms = _parts(system, gateway, rate)
    try:
        mailing_id = _mailing(system, actor, 'Бенч, по частям')
        started = time.perf_counter()
        queued = worker.run_once()
        queued_s = time.perf_counter() - started
        started = time.perf_counter()
        while dispatcher.run_once():
            pass
        sent_s = time.perf_counter() - started
        sent = select(func.count()).where(
            OutboxMessage.mailing_id == mailing_id, OutboxMessage.status == 'sent'
        )
        with system.engine.connect() as connection:
            delivered = connection.scalar(sent) or 0
    finally:
        dispatcher.stop()
        sms.close()
    return {
        'queued': queued,
        'queue_s': round(queued_s, 2),
        'queued_per_s': round(queued / queued_s, 1),
        'sent': delivered,
        'send_s': round(sent_s, 2),
        'sent_per_s': round(delivered / sent_s, 1),
    }


def _watch(engine: Engine, mailing_id: int, messages: int, started: float) -> tuple[float, float]:
    """(seconds until every message was queued, seconds until the last was sent), polled every 10 ms."""
    queued_s: float | None = None
    deadline = started + 600
    sent = select(func.count()).where(OutboxMessage.mailing_id == mailing_id, OutboxMessage.status == 'sent')
    state = select(Mailing.status).where(Mailing.id == mailing_id)
    with engine.connect() as connection:
        while time.perf_counter() < deadline:
            if queued_s is None and connection.scalar(state) == 'done':
                queued_s = time.perf_counter() - started
            if (connection.scalar(sent) or 0) >= messages:
                return queued_s or time.perf_counter() - started, time.perf_counter() - started
            connection.rollback()
            time.sleep(0.01)
    raise RuntimeError('the mailing did not finish in 10 minutes')


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument('--borrowers', type=int, default=100_000, help='borrowers in the checked segment')
    parser.add_argument('--messages', type=int, default=10_000, help='SMS the mailing sends (0: no send)')
    parser.add_argument('--runs', type=int, default=3, help='timed checks of the segment')
    parser.add_argument('--rate', type=float, default=100_000.0, help='the cluster SMS rate, per second')
    parser.add_argument('--seed', type=int, default=20261126)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format='%(asctime)s %(levelname)s %(message)s'
    )
    sys.setswitchinterval(0.001)  # as app.py runs the workers: a thread waits for the GIL 1 ms at most
    load_avg = os.getloadavg()[0]

    url = database_url()
    upgrade(url)
    engine = make_engine(url)
    started = time.perf_counter()
    loaded = load(engine, args.borrowers, args.messages, args.seed)
    load_s = time.perf_counter() - started
    clock = RunningClock(START)
    system = bootstrap.build(Settings(database_url=url), engine=engine, bus=RecordingBus(), clock=clock)
    with engine.connect() as connection:
        supervisor_id = connection.execute(
            select(User.id).where(User.login == 'bench_supervisor')
        ).scalar_one()
    actor = Actor(supervisor_id, 'bench_supervisor', 'Руководитель Бенча', Role.SUPERVISOR)
    checked = check(system, actor, args.runs)
    sent = send(system, actor, args.messages, args.rate) if args.messages else {}
    engine.dispose()
    report = {
        'backend': engine.dialect.name,
        'loaded': loaded,
        'load_s': round(load_s, 1),
        'check': checked,
        'send': sent,
        'targets': {'check_ms': 5000, 'messages_per_s': 1000},
        'met': {
            'check_ms': checked['median_ms'] <= 5000,
            'messages_per_s': bool(sent) and sent['messages_per_s'] >= 1000,
        },
        'machine': machine(load_avg),
    }
    print(json.dumps(report, ensure_ascii=False))


if __name__ == '__main__':
    main()
