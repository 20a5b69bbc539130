"""«Журнал действий» on 10,000,000 audit entries in PostgreSQL; run by `make bench`.

Needs CRM_BENCH_DATABASE_URL (PostgreSQL); the rows go to a database of its own beside that one,
``<name>_audit`` (or CRM_BENCH_AUDIT_DATABASE_URL), which this script owns: it drops and recreates its
``public`` schema when it loads. The entries are generated in the server (``INSERT … SELECT`` over
``generate_series``, deterministic hashes of the row number; three years, a mix of actions as a call
centre writes them), with the table's indexes and foreign keys dropped for the load and built after
it; a database loaded with the same counts, generator version and schema revision is reused. Then
``AuditViews.page`` (the ids, the rows, the capped count) is timed for each filter and combinations,
and ``audit.record`` — one entry written inside a transaction, as every audited act does. Logs go to
stderr; stdout gets exactly one JSON object.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.harness

from crm.db.engine import make_engine, make_sessions
from crm.db.migrate import head_revision
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.origin import acting_from
from crm.services import audit
from crm.services.audit_views import AuditFilters, AuditViews
from tests.harness import load_once, machine

log = logging.getLogger('bench.audit')

URL_VARIABLE = 'CRM_BENCH_DATABASE_URL'
OWN_URL_VARIABLE = 'CRM_BENCH_AUDIT_DATABASE_URL'  # instead of <name>_audit
GENERATOR_VERSION = '2'
TARGET_PAGE_MS = 1_000
TARGET_WRITE_MS = 5
PER_PAGE = 50
WARMUP = 10
USERS = 200
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
SPAN_DAYS = 1095
# a call centre's mix, in hundredths: mostly card views and calls; rare bureau requests and exports
MIX = (
    [('card.view', True)] * 52
    + [('call.dial', True)] * 12
    + [('call.result', True)] * 12
    + [('message.sms', True)] * 5
    + [('chat.view', True)] * 4
    + [('login', False)] * 5
    + [('logout', False)] * 4
    + [('login.failed', False)] * 2
    + [('bureau.request', True)] * 2
    + [('borrower.legal_status', True)]
    + [('requests.export', False)]
)
INDEXES = {
    'ix_audit_entries_at_id': '(at, id)',
    'ix_audit_entries_user_at': '(user_id, at, id)',
    'ix_audit_entries_borrower_at': '(borrower_id, at, id)',
    'ix_audit_entries_action_at': '(action, at, id)',
    'ix_audit_entries_user_action_at': '(user_id, action, at, id)',
}
FOREIGN_KEYS = {
    'fk_audit_entries_user_id_users': 'FOREIGN KEY (user_id) REFERENCES users (id)',
    'fk_audit_entries_borrower_id_borrowers': (
        'FOREIGN KEY (borrower_id) REFERENCES borrowers (id) ON DELETE SET NULL'
    ),
}


@dataclass(frozen=True)
class Settings:
    url: str
    entries: int
    borrowers: int
    queries: int
    writes: int
    reload: bool


def parse_settings(argv: Sequence[str] | None = None) -> Settings | None:
    parser = argparse.ArgumentParser(description='Benchmark the «Журнал действий» page and audit writes.')
    parser.add_argument('--entries', type=int, default=10_000_000, help='audit entries (default 10,000,000)')
    parser.add_argument('--borrowers', type=int, default=200_000, help='borrowers they name')
    parser.add_argument('--queries', type=int, default=100, help='timed pages per case (default 100)')
    parser.add_argument('--writes', type=int, default=2_000, help='timed audit writes (default 2,000)')
    parser.add_argument('--reload', action='store_true', help='wipe the database and load it anew')
    args = parser.parse_args(argv)
    url = os.environ.get(URL_VARIABLE)
    if not url or make_url(url).get_backend_name() != 'postgresql':
        return None
    parsed = make_url(url)
    own = parsed.set(database=f'{parsed.database}_audit').render_as_string(hide_password=False)
    url = os.environ.get(OWN_URL_VARIABLE) or own
    return Settings(url, args.entries, args.borrowers, args.queries, args.writes, args.reload)


# --- loading ----------------------------------------------------------------------------------------
def wanted_marker(settings: Settings) -> dict[str, str]:
    return {
        'entries': str(settings.entries),
        'borrowers': str(settings.borrowers),
        'version': GENERATOR_VERSION,
        'revision': head_revision(settings.url) or '',
    }


def prepare(settings: Settings) -> tuple[float | None, bool]:
    """Make the database hold the wanted rows; return (load seconds, whether they were reused)."""
    load_s, reused = load_once(
        settings.url,
        name='audit',
        wanted=wanted_marker(settings),
        reload=settings.reload,
        load=lambda engine: load(engine, settings),
    )
    log.info('%s the database (%s entries)', 'reusing' if reused else 'loaded', settings.entries)
    return load_s, reused


HASH = """CREATE FUNCTION pg_temp.h(g bigint, salt int, n int) RETURNS int LANGUAGE sql IMMUTABLE
AS $$ SELECT ((hashint8(g * 64 + salt)::bigint & 2147483647) % n)::int $$"""


def load(engine: Engine, settings: Settings) -> None:
    """Users, borrowers, then the entries without indexes or foreign keys, then those; one transaction."""
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        connection.execute(text('SET LOCAL statement_timeout = 0'))
        connection.execute(text(HASH))
        connection.execute(
            text(
                'INSERT INTO users (login, full_name, password_hash, role, active, failed_logins, '
                'created_at) '
                "SELECT 'bench_user_' || g, 'Сотрудник ' || g, '!bench', 'operator', true, 0, :now "
                'FROM generate_series(1, :n) g'
            ),
            {'n': USERS, 'now': NOW},
        )
        connection.execute(
            text(
                'INSERT INTO borrowers (id, pin, last_name, first_name, middle_name, search_name, '
                'birth_date, city, timezone, monthly_payment, archived, total_debt, overdue_amount, '
                'days_past_due, created_at) '
                "SELECT g, (1000000000 + g)::text, 'Журналов' || g, 'Иван', 'Иванович', "
                "'журналов' || g || ' иван иванович', date '1980-01-01', 'Москва', 'Europe/Moscow', "
                '0, false, 0, 0, 0, :now FROM generate_series(1, :n) g'
            ),
            {'n': settings.borrowers, 'now': NOW},
        )
        for name in INDEXES:
            connection.execute(text(f'DROP INDEX IF EXISTS {name}'))
        for name in FOREIGN_KEYS:
            connection.execute(text(f'ALTER TABLE audit_entries DROP CONSTRAINT IF EXISTS {name}'))
        log.info('%s audit entries', settings.entries)
        first_user = int(
            connection.scalar(text("SELECT min(id) FROM users WHERE login LIKE 'bench_user_%'")) or 0
        )
        connection.execute(
            text(
                'INSERT INTO audit_entries (at, user_id, action, borrower_id, details, address) '
                'SELECT :now - make_interval(secs => (:n - g) * CAST(:step AS double precision)), '
                ':u0 + pg_temp.h(g, 1, :users), '
                'x.action, CASE WHEN x.named THEN 1 + pg_temp.h(g, 3, :borrowers) END, '
                'CASE WHEN x.action = \'login.failed\' THEN \'{"login": "bench"}\' END, '
                "'10.0.' || pg_temp.h(g, 4, 256) || '.' || pg_temp.h(g, 5, 256) "
                'FROM generate_series(1, :n) g, LATERAL (SELECT '
                '(CAST(:actions AS text[]))[1 + pg_temp.h(g, 2, 100)] AS action, '
                '(CAST(:named AS boolean[]))[1 + pg_temp.h(g, 2, 100)] AS named) x'
            ),
            {
                'now': NOW,
                'n': settings.entries,
                'step': SPAN_DAYS * 86400 / settings.entries,
                'u0': first_user,
                'users': USERS,
                'borrowers': settings.borrowers,
                'actions': [action for action, _ in MIX],
                'named': [named for _, named in MIX],
            },
        )
        log.info('indexes and foreign keys')
        for name, columns in INDEXES.items():
            connection.execute(text(f'CREATE INDEX {name} ON audit_entries {columns}'))
        for name, constraint in FOREIGN_KEYS.items():
            connection.execute(text(f'ALTER TABLE audit_entries ADD CONSTRAINT {name} {constraint}'))
    with engine.connect().execution_options(isolation_level='AUTOCOMMIT') as connection:
        connection.execute(text('VACUUM ANALYZE users, borrowers, audit_entries'))


# --- measuring --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[random.Random], tuple[AuditFilters, int]]  # the filters and the page


def cases(users: list[int], borrowers: int) -> list[Case]:
    today = NOW.date()

    def user(rng: random.Random) -> int:
        return rng.choice(users)

    def pin(rng: random.Random) -> str:
        return str(1_000_000_000 + rng.randint(1, borrowers))

    def week(rng: random.Random) -> tuple[date, date]:
        start = today - timedelta(days=rng.randint(7, SPAN_DAYS - 7))
        return start, start + timedelta(days=6)

    def month(rng: random.Random) -> tuple[date, date]:
        start = today - timedelta(days=rng.randint(30, SPAN_DAYS - 30))
        return start, start + timedelta(days=29)

    def f(**kw: Any) -> AuditFilters:
        return AuditFilters(**kw)

    return [
        Case('everything', lambda rng: (f(), 1)),
        Case('everything_page_100', lambda rng: (f(), 100)),
        Case('period_week', lambda rng: (f(date_from=(w := week(rng))[0], date_to=w[1]), 1)),
        Case('user', lambda rng: (f(user_id=user(rng)), 1)),
        Case('user_page_50', lambda rng: (f(user_id=user(rng)), 50)),
        Case(
            'user_month', lambda rng: (f(user_id=user(rng), date_from=(m := month(rng))[0], date_to=m[1]), 1)
        ),
        Case('borrower', lambda rng: (f(borrower=pin(rng)), 1)),
        Case('borrower_action', lambda rng: (f(borrower=pin(rng), action='card.view'), 1)),
        Case('action_common', lambda rng: (f(action='card.view'), 1)),
        Case('action_rare', lambda rng: (f(action='requests.export'), 1)),
        Case('action_group_login', lambda rng: (f(action='login'), 1)),
        Case('action_group_login_page_20', lambda rng: (f(action='login'), 20)),
        Case('user_action_rare', lambda rng: (f(user_id=user(rng), action='bureau.request'), 1)),
        Case('user_action_group', lambda rng: (f(user_id=user(rng), action='login'), 1)),
        Case(
            'action_week',
            lambda rng: (f(action='bureau.request', date_from=(w := week(rng))[0], date_to=w[1]), 1),
        ),
        Case(
            'user_action_month',
            lambda rng: (
                f(user_id=user(rng), action='card.view', date_from=(m := month(rng))[0], date_to=m[1]),
                1,
            ),
        ),
        Case('borrower_user', lambda rng: (f(borrower=pin(rng), user_id=user(rng)), 1)),
    ]


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def figures(timings: list[float], target: float) -> dict[str, float | bool]:
    p95 = percentile(timings, 0.95)
    return {
        'p50_ms': round(statistics.median(timings), 2),
        'p95_ms': round(p95, 2),
        'p99_ms': round(percentile(timings, 0.99), 2),
        'max_ms': round(max(timings), 2),
        'met': p95 <= target,
    }


def measure_pages(engine: Engine, settings: Settings, admin: Actor) -> dict[str, dict[str, float | bool]]:
    views = AuditViews(make_sessions(engine))
    with engine.connect() as connection:
        users = list(connection.scalars(text("SELECT id FROM users WHERE login LIKE 'bench_user_%'")))
    rng = random.Random(20261202)
    results: dict[str, dict[str, float | bool]] = {}
    for case in cases(users, settings.borrowers):
        for _ in range(WARMUP):
            views.page(admin, *case.make(rng), per_page=PER_PAGE)
        timings, totals = [], []
        for _ in range(settings.queries):
            filters, page = case.make(rng)
            started = time.perf_counter()
            result = views.page(admin, filters, page, PER_PAGE)
            timings.append((time.perf_counter() - started) * 1000)
            totals.append(result.total)
        results[case.name] = figures(timings, TARGET_PAGE_MS) | {
            'mean_total': round(statistics.fmean(totals), 1)
        }
        log.info(
            '%-28s p50 %7.2f  p95 %7.2f ms',
            case.name,
            results[case.name]['p50_ms'],
            results[case.name]['p95_ms'],
        )
    return results


def measure_writes(engine: Engine, settings: Settings, admin: Actor) -> dict[str, dict[str, float | bool]]:
    """``audit.record`` inside an open transaction (what an act pays on top of its own work), and the
    transaction of that one entry with its commit, for scale."""
    sessions = make_sessions(engine)
    rng = random.Random(7)
    inside, whole = [], []
    with acting_from('192.0.2.10'):
        for n in range(WARMUP * 10 + settings.writes):
            started = time.perf_counter()
            with sessions.begin() as session:
                session.connection()  # the transaction is open: what follows is the act's extra cost
                begun = time.perf_counter()
                audit.record(
                    session,
                    'card.view',
                    user_id=admin.id,
                    borrower_id=rng.randint(1, settings.borrowers),
                    n=n,
                )
                recorded = time.perf_counter()
            if n >= WARMUP * 10:
                inside.append((recorded - begun) * 1000)
                whole.append((time.perf_counter() - started) * 1000)
    return {
        'record_in_transaction': figures(inside, TARGET_WRITE_MS),
        'transaction_with_commit': figures(whole, 50),
    }


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format='%(asctime)s %(message)s')
    settings = parse_settings(argv)
    if settings is None:
        print(json.dumps({'benchmark': 'audit', 'skipped': f'{URL_VARIABLE} (PostgreSQL) is not set'}))
        return 0
    load_s, reused = prepare(settings)
    load_avg = os.getloadavg()[0]
    engine = make_engine(settings.url)
    try:
        with engine.connect() as connection:
            admin_id = int(connection.scalar(text('SELECT min(id) FROM users')) or 0)
        admin = Actor(id=admin_id, login='bench_admin', full_name='Администратор', role=Role.ADMIN)
        pages = measure_pages(engine, settings, admin)
        writes = measure_writes(engine, settings, admin)
    finally:
        engine.dispose()
    report = {
        'benchmark': 'audit',
        'backend': 'postgresql',
        'entries': settings.entries,
        'borrowers': settings.borrowers,
        'users': USERS,
        'queries_per_case': settings.queries,
        'per_page': PER_PAGE,
        'load_s': load_s,
        'reused': reused,
        'machine': machine(load_avg),
        'target_page_p95_ms': TARGET_PAGE_MS,
        'target_write_p95_ms': TARGET_WRITE_MS,
        'pages': pages,
        'writes': writes,
        'met': all(bool(r['met']) for r in pages.values()) and bool(writes['record_in_transaction']['met']),
    }
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == '__main__':
    sys.exit(main())
