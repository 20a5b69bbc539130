"""A burst of ``loan.payment.received``: 10,000 payments committed with their promise outcomes.

``--borrowers`` (5,000) borrowers with one loan each and one or two open promises each (made two days
before the burst, due on its day or up to two days later); ``--payments`` (10,000) payments spread over
them, each at a moment inside its borrower's promise window, so each can count for a promise —
about a third of the promises end kept, the rest partly paid and still open. The payments are published as
fast as ``--publishers`` (4) threads can (no publisher confirms: the consumer is measured, not the
publisher) and the time runs from the first publish until ``SELECT count(*) FROM payments`` shows all of
them committed; a payment commits in the same transaction as its loan's debt, its history entry and the
promises it counts for, so that count is the count of payments with their outcomes. The outcomes are
checked after the burst (every borrower who paid has it counted for a promise).

PostgreSQL + RabbitMQ when CRM_BENCH_DATABASE_URL and CRM_BENCH_AMQP_URL are set: the database is one
of its own next to the URL's, named ``<name>_payments``, which **this script owns** (dropped and made
anew every run); the events go through the vhost of CRM_BENCH_AMQP_URL (its ``crm.events.crm`` queue is
purged first) to a ``RabbitBus`` consumer in this process, as the app runs it. Otherwise SQLite in
var/bench/payments.sqlite3 and the in-process bus. The services run on a clock that starts on Wednesday
26.11.2026 at 12:00 Moscow time. Logs go to stderr; stdout gets exactly one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.harness

from crm import bootstrap
from crm.config import Settings
from crm.db.engine import make_engine
from crm.db.migrate import upgrade
from crm.db.models import Borrower, Loan, Payment, Promise
from crm.domain.clock import RunningClock
from crm.integrations.bus import EVENTS_QUEUE, EventBus
from tests.harness import bench_database_url, machine, publish_burst, purge_events_queue

log = logging.getLogger('bench.payments')

SQLITE_PATH = Path(__file__).resolve().parent.parent / 'var' / 'bench' / 'payments.sqlite3'
START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)  # Wednesday, 12:00 in Moscow
EVENT = 'loan.payment.received'
CHUNK = 5_000
TARGET_PER_S = 1000


def database_url() -> str:
    return bench_database_url('payments', SQLITE_PATH)


# --- the base ---------------------------------------------------------------------------------------
def load(engine: Engine, borrowers: int, seed: int) -> dict[str, int]:
    """Borrowers, one loan each, one or two open promises each; set-wise."""
    rng = random.Random(seed)
    counts = {'borrowers': 0, 'loans': 0, 'promises': 0}
    with engine.begin() as connection:
        for first in range(1, borrowers + 1, CHUNK):
            rows = [_borrower(i) for i in range(first, min(first + CHUNK, borrowers + 1))]
            connection.execute(insert(Borrower), rows)
            connection.execute(insert(Loan), [_loan(r) for r in rows])
            promises = [p for r in rows for p in _promises(rng, r)]
            connection.execute(insert(Promise), promises)
            counts['borrowers'] += len(rows)
            counts['loans'] += len(rows)
            counts['promises'] += len(promises)
    if engine.dialect.name == 'postgresql':
        with engine.connect().execution_options(isolation_level='AUTOCOMMIT') as connection:
            connection.execute(text('VACUUM ANALYZE'))
    return counts


def _borrower(i: int) -> dict[str, Any]:
    return {
        'id': i,
        'pin': f'{6_000_000_000 + i}',
        'last_name': 'Платёжкин',
        'first_name': 'Иван',
        'middle_name': 'Петрович',
        'search_name': 'платёжкин иван петрович',
        'birth_date': date(1985, 1, 1) + timedelta(days=i % 7000),
        'city': 'Москва',
        'timezone': 'Europe/Moscow',
        'monthly_payment': Decimal(3000),
        'archived': False,
        'total_debt': Decimal(60_000),
        'overdue_amount': Decimal(40_000),
        'days_past_due': 30,
        'created_at': START,
        'contact_refused': False,
        'representative_only': False,
        'bankrupt': False,
        'incapacitated': False,
    }


def loan_number(borrower_id: int) -> str:
    return f'ПЛ-{borrower_id:08d}'


def _loan(borrower: dict[str, Any]) -> dict[str, Any]:
    return {
        'borrower_id': borrower['id'],
        'number': loan_number(borrower['id']),
        'product': 'PDL До зарплаты',
        'amount': Decimal(30_000),
        'term_days': 30,
        'rate': Decimal('0.8'),
        'issued_on': date(2026, 9, 1),
        'due_on': date(2026, 10, 27),
        'state': 'active',
        'status_code': 3000,
        'status_name': 'Просрочка',
        'principal_outstanding': Decimal(60_000),
        'total_debt': Decimal(60_000),
        'overdue_amount': Decimal(40_000),
        'days_past_due': 30,
    }


def _promises(rng: random.Random, borrower: dict[str, Any]) -> list[dict[str, Any]]:
    """One promise, or two (a fifth of the borrowers), open, made two days ago."""
    return [
        {
            'borrower_id': borrower['id'],
            'amount': Decimal(rng.randint(2, 8) * 1000),
            'due_on': START.date() + timedelta(days=rng.randint(0, 2)),
            'status': 'open',
            'paid_amount': Decimal(0),
            'created_at': START - timedelta(days=2),
        }
        for _ in range(2 if rng.random() < 0.2 else 1)
    ]


def payments(count: int, borrowers: int, seed: int) -> list[dict[str, str]]:
    """``count`` payments over the borrowers, each inside its promise's window (made after the promise,
    on the burst's day), 500–4,000 roubles: some promises end kept, some partly paid."""
    rng = random.Random(seed + 1)
    bodies = []
    for n in range(count):
        at = START - timedelta(hours=2) + timedelta(seconds=rng.randint(0, 7200))
        bodies.append(
            {
                'payment_id': f'bench-pay-{seed}-{n}',
                'loan_number': loan_number(n % borrowers + 1),
                'amount': f'{rng.randint(5, 40) * 100}.00',
                'at': at.isoformat(),
            }
        )
    rng.shuffle(bodies)  # a borrower's payments arrive apart, in any order
    return bodies


# --- the burst --------------------------------------------------------------------------------------
def purge_old_events(url: str) -> None:
    purged = purge_events_queue(url)
    if purged:
        log.info('purged %d old messages from %s', purged, EVENTS_QUEUE)


def rabbit_publisher(amqp_url: str) -> Callable[[list[dict[str, str]], threading.Barrier], None]:
    def publish(chunk: list[dict[str, str]], barrier: threading.Barrier) -> None:
        publish_burst(amqp_url, EVENT, list(chunk), barrier)

    return publish


def bus_publisher(bus: EventBus) -> Callable[[list[dict[str, str]], threading.Barrier], None]:
    def publish(chunk: list[dict[str, str]], barrier: threading.Barrier) -> None:
        barrier.wait()
        for body in chunk:
            bus.publish_event(EVENT, body)

    return publish


def count_payments(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(Payment)) or 0


def burst(
    engine: Engine,
    bodies: list[dict[str, str]],
    publish: Callable[[list[dict[str, str]], threading.Barrier], None],
    threads: int,
) -> dict[str, Any]:
    """Publish from ``threads`` threads at once; seconds from the first publish until all committed."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads + 1)

    def guarded(chunk: list[dict[str, str]]) -> None:
        try:
            publish(chunk, barrier)
        except BaseException as error:
            errors.append(error)
            barrier.abort()

    workers = [
        threading.Thread(target=guarded, args=(bodies[i::threads],), daemon=True) for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    committed, last_change, last_count = 0, time.monotonic(), 0
    while committed < len(bodies):
        if errors:
            raise RuntimeError(f'a publisher failed: {errors[0]!r}') from errors[0]
        time.sleep(0.01)
        committed = count_payments(engine)
        if committed != last_count:
            last_change, last_count = time.monotonic(), committed
        elif time.monotonic() - last_change > 30:
            raise RuntimeError(f'no progress for 30 s at {committed}/{len(bodies)} committed')
    seconds = time.perf_counter() - started
    for worker in workers:
        worker.join(60)
    per_s = round(committed / seconds, 1)
    return {'committed': committed, 'seconds': round(seconds, 2), 'events_per_s': per_s}


def outcomes(engine: Engine) -> dict[str, Any]:
    """The promises after the burst, by status; and whether every borrower who paid has it counted for a
    promise (each payment lies in a promise's window, so the first one handled for a borrower counts —
    later ones may find the promises kept already)."""
    with engine.connect() as connection:
        by_status = select(Promise.status, func.count()).group_by(Promise.status)
        statuses = {status: count for status, count in connection.execute(by_status)}
        payers = connection.scalar(select(func.count(func.distinct(Payment.borrower_id)))) or 0
        counted = select(func.count(func.distinct(Promise.borrower_id))).where(Promise.paid_amount > 0)
        paid_for = connection.scalar(counted) or 0
    return {'promises': statuses, 'payers': payers, 'payers_counted_for_a_promise': paid_for}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument('--payments', type=int, default=10_000)
    parser.add_argument('--borrowers', type=int, default=5_000)
    parser.add_argument('--publishers', type=int, default=4, help='publisher threads')
    parser.add_argument('--seed', type=int, default=20261126)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format='%(asctime)s %(levelname)s %(message)s'
    )
    logging.getLogger('pika').setLevel(logging.ERROR)  # a purge of a queue not declared yet is no news
    sys.setswitchinterval(0.001)  # as app.py runs: a thread waits for the GIL 1 ms at most
    load_avg = os.getloadavg()[0]
    amqp_url = os.environ.get('CRM_BENCH_AMQP_URL') if os.environ.get('CRM_BENCH_DATABASE_URL') else None

    url = database_url()
    upgrade(url)
    engine = make_engine(url)
    loaded = load(engine, args.borrowers, args.seed)
    bodies = payments(args.payments, args.borrowers, args.seed)
    if amqp_url:
        purge_old_events(amqp_url)
    settings = Settings(database_url=url, amqp_url=amqp_url or None, pbx_simulator=False)
    system = bootstrap.build(settings, engine=engine, clock=RunningClock(START), dispatcher=False)
    system.start(lambda _: None)
    try:
        publish = rabbit_publisher(amqp_url) if amqp_url else bus_publisher(system.bus)
        measured = burst(engine, bodies, publish, max(1, args.publishers))
    finally:
        system.stop(keep_engine=True)
    checked = outcomes(engine)
    engine.dispose()
    report = {
        'what': f'{args.payments} {EVENT} published → consumer → committed with promise outcomes',
        'backend': engine.dialect.name,
        'bus': 'rabbitmq' if amqp_url else 'in-process',
        'loaded': loaded,
        'publishers': args.publishers,
        **measured,
        'outcomes': checked,
        'target_events_per_s': TARGET_PER_S,
        'met': measured['events_per_s'] >= TARGET_PER_S
        and checked['payers'] == checked['payers_counted_for_a_promise'] == args.borrowers,
        'machine': machine(load_avg),
    }
    print(json.dumps(report, ensure_ascii=False))


if __name__ == '__main__':
    main()
