"""A ring recorded with its card, as the event consumer does it, warm and after the CPU sat idle.

The consumer's transaction for one `telephony.call.incoming` whose operator has a tab in this process:
the claim, the call and its communication, the card, its 230-FZ verdict and the audit entry, one commit
(``InboundRouter.handle_deliveries``, nothing else: no broker, no browser). Timed `--warm` times back to
back, then `--idle` times each after `--pause` seconds of sleep: the paced screen-pop bench rings every
half second, and on a shared 2-core virtual machine the same Python code runs several times slower
after such a pause (its caches are cold), so both are reported.

PostgreSQL when CRM_BENCH_DATABASE_URL is set — in a database of its own next to that one, named
``<name>_ring``, which **this script owns** (dropped and made anew every run); SQLite in
var/bench/ring.sqlite3 otherwise. Logs go to stderr; stdout gets exactly one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.harness

from crm import bootstrap
from crm.config import Settings
from crm.db.demo import seed_demo
from crm.db.engine import make_engine, make_sessions
from crm.db.migrate import upgrade
from crm.db.models import BorrowerPhone, User
from crm.integrations.bus import Delivery, RecordingBus
from tests.harness import bench_database_url, machine

log = logging.getLogger('bench.ring')

SQLITE_PATH = Path(__file__).resolve().parent.parent / 'var' / 'bench' / 'ring.sqlite3'
SEED = 20261126
EXTENSION = '101'  # operator1 of the demo data: the tab this process holds


def database_url() -> str:
    return bench_database_url('ring', SQLITE_PATH)


def summary(values: Sequence[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100, method='inclusive')
    figures = {'p50': statistics.median(values), 'p95': cuts[94], 'p99': cuts[98], 'max': max(values)}
    return {name: round(value, 2) for name, value in figures.items()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument('--warm', type=int, default=300, help='rings timed back to back')
    parser.add_argument('--idle', type=int, default=60, help='rings timed each after a pause')
    parser.add_argument('--pause', type=float, default=0.5, help='seconds of sleep before each idle ring')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format='%(asctime)s %(levelname)s %(message)s')

    url = database_url()
    upgrade(url)
    engine = make_engine(url)
    seed_demo(make_sessions(engine), borrowers=2000, seed=SEED)
    system = bootstrap.build(Settings(database_url=url), engine=engine, bus=RecordingBus())
    system.services.screen_pops.watch(lambda extension: extension == EXTENSION)
    with engine.connect() as connection:
        single = (
            select(BorrowerPhone.phone)
            .group_by(BorrowerPhone.phone)
            .having(func.count() == 1)
            .order_by(BorrowerPhone.phone)
        )
        phones = list(connection.scalars(single))
        operator_id = connection.scalar(select(User.id).where(User.extension == EXTENSION))
    needed = 20 + args.warm + args.idle
    if len(phones) < needed or operator_id is None:
        raise SystemExit(f'the demo data has {len(phones)} phones of one borrower, {needed} needed')

    def ring(phone: str) -> float:
        call_id = f'bench-ring-{uuid.uuid4()}'
        body = {
            'call_id': call_id,
            'from': phone,
            'to_extension': EXTENSION,
            'at': '2026-11-26T09:00:00+00:00',
        }
        delivery = Delivery('telephony.call.incoming', json.dumps(body).encode())
        started = time.perf_counter()
        outcome = system.services.inbound.handle_deliveries([delivery])
        took = (time.perf_counter() - started) * 1000
        popped = system.services.screen_pops.take(call_id, operator_id)
        if outcome != [None] or popped is None or popped.card is None:
            raise RuntimeError(f'ring {call_id} was not recorded with its card: {outcome}')
        return took

    for phone in phones[:20]:
        ring(phone)
    warm = [ring(phone) for phone in phones[20 : 20 + args.warm]]
    idle = []
    for phone in phones[20 + args.warm : needed]:
        time.sleep(args.pause)
        idle.append(ring(phone))
    engine.dispose()
    report: dict[str, Any] = {
        'backend': engine.dialect.name,
        'what': 'InboundRouter.handle_deliveries of one incoming call, its card read in the same transaction',
        'warm_ms': summary(warm),
        'after_idle_ms': summary(idle),
        'pause_s': args.pause,
        'rings': {'warm': len(warm), 'after_idle': len(idle)},
        'machine': machine(),
    }
    print(json.dumps(report, ensure_ascii=False))


if __name__ == '__main__':
    main()
