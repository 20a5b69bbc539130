"""The «Обращения» page on 1,000,000 requests in PostgreSQL; run by `make bench`.

Needs CRM_BENCH_DATABASE_URL (PostgreSQL); the rows go to a database of its own beside that one,
``<name>_requests`` (or CRM_BENCH_REQUESTS_DATABASE_URL), which this script owns: it drops and
recreates its ``public`` schema when it loads. The rows are generated in the server (``INSERT …
SELECT`` over ``generate_series``, deterministic hashes of the row number), with the requests' indexes
dropped for the load and built after it; a database loaded with the same counts, generator version and
schema revision is reused. Then ``RequestViews.page`` (what the page calls: the page's ids, its rows
and the capped count) is timed for each filter, each sort column and the full-text search, a few
hundred runs each with varied parameters. Logs go to stderr; stdout gets exactly one JSON object.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.harness

from crm.db.engine import make_engine, make_sessions
from crm.db.migrate import head_revision
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.clock import SettableClock
from crm.domain.contact_rules import CallLimits
from crm.domain.requests import DEFAULT_TOPICS, REQUEST_CHANNEL_LABELS, REQUEST_STATUS_LABELS
from crm.services.request_views import SORTS, RequestFilters, RequestViews
from tests.harness import load_once, machine

log = logging.getLogger('bench.requests')

URL_VARIABLE = 'CRM_BENCH_DATABASE_URL'
OWN_URL_VARIABLE = 'CRM_BENCH_REQUESTS_DATABASE_URL'  # instead of <name>_requests
GENERATOR_VERSION = '2'
TARGET_MS = 50
PER_PAGE = 50
WARMUP = 30
OPERATORS = 60
OPEN_RECENT = 30_000  # the newest requests are open (about a month's worth); older ones are closed
NEW_RECENT = 3_000  # the newest of them are new and in nobody's hands
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)  # the data's "now" and the service's clock
SPAN_DAYS = 1095

SUBJECTS = {
    'payment': ('Платёж не зачислен', 'Оплата прошла дважды', 'Не вижу платёж в ЛК'),
    'requisites': ('Запрос реквизитов для оплаты', 'Реквизиты для перевода из другого банка'),
    'restructuring': ('Прошу реструктуризацию', 'Потеря работы, прошу рассрочку'),
    'prolongation': ('Продлить заём', 'Условия пролонгации'),
    'account_access': ('Не могу войти в личный кабинет', 'Не приходит пароль от ЛК'),
    'complaint': ('Жалоба на звонки', 'Жалоба на сотрудника', 'Звонят родственникам'),
    'documents': ('Справка о закрытии займа', 'Справка об отсутствии задолженности'),
    'other': ('Смена номера телефона', 'Смена фамилии', 'Вопрос по договору'),
}
PHRASES = (
    'прошу разобраться',
    'оплатил через терминал',
    'деньги списаны с карты',
    'в личном кабинете долг не изменился',
    'прошу перезвонить вечером',
    'сменил работу',
    'задержали зарплату',
    'готов погасить частями',
    'прошу не звонить на работу',
    'квитанцию прикладываю',
    'нужна справка для банка',
    'номер договора указан в письме',
    'сотрудник был груб',
    'звонят после десяти вечера',
    'прошу пересчитать пени',
    'карта заблокирована',
    'хочу закрыть заём досрочно',
    'нахожусь в больнице',
    'уехал в командировку',
    'жду ответа',
)


@dataclass(frozen=True)
class Settings:
    url: str
    requests: int
    borrowers: int
    queries: int
    reload: bool


def parse_settings(argv: Sequence[str] | None = None) -> Settings | None:
    parser = argparse.ArgumentParser(description='Benchmark the «Обращения» page query.')
    parser.add_argument(
        '--requests', type=int, default=1_000_000, help='requests to load (default 1,000,000)'
    )
    parser.add_argument('--borrowers', type=int, default=200_000, help='borrowers they belong to')
    parser.add_argument('--queries', type=int, default=300, help='timed queries per case (default 300)')
    parser.add_argument('--reload', action='store_true', help='wipe the database and load it anew')
    args = parser.parse_args(argv)
    least = OPEN_RECENT + args.requests // 1000  # every open request a borrower of its own
    if args.borrowers < least:
        parser.error(f'--borrowers must be at least {least:,} for {args.requests:,} requests')
    url = os.environ.get(URL_VARIABLE)
    if not url or make_url(url).get_backend_name() != 'postgresql':
        return None
    # a database of its own beside search.py's (each wipes what it did not load): <name>_requests
    parsed = make_url(url)
    own = parsed.set(database=f'{parsed.database}_requests').render_as_string(hide_password=False)
    url = os.environ.get(OWN_URL_VARIABLE) or own
    return Settings(url, args.requests, args.borrowers, args.queries, args.reload)


# --- loading ----------------------------------------------------------------------------------------
def wanted_marker(settings: Settings) -> dict[str, str]:
    return {
        'requests': str(settings.requests),
        'request_borrowers': str(settings.borrowers),
        'requests_version': GENERATOR_VERSION,
        'revision': head_revision(settings.url) or '',
    }


def prepare(settings: Settings) -> tuple[float | None, bool]:
    """Make the database hold the wanted rows; return (load seconds, whether they were reused)."""
    load_s, reused = load_once(
        settings.url,
        name='requests',
        wanted=wanted_marker(settings),
        reload=settings.reload,
        load=lambda engine: load(engine, settings),
    )
    log.info('%s the database (%s requests)', 'reusing' if reused else 'loaded', settings.requests)
    return load_s, reused


HASH = """CREATE FUNCTION pg_temp.h(g bigint, salt int, n int) RETURNS int LANGUAGE sql IMMUTABLE
AS $$ SELECT ((hashint8(g * 64 + salt)::bigint & 2147483647) % n)::int $$"""


def load(engine: Engine, settings: Settings) -> None:
    """Users, borrowers with a phone each, then the requests, then their indexes; one transaction."""
    from faker.providers.person.ru_RU import Provider

    names = {
        'lm': list(Provider.last_names_male),
        'fm': list(Provider.first_names_male),
        'mm': list(Provider.middle_names_male),
        'lf': list(Provider.last_names_female),
        'ff': list(Provider.first_names_female),
        'mf': list(Provider.middle_names_female),
    }
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
        connection.execute(text('SET LOCAL statement_timeout = 0'))
        connection.execute(text(HASH))
        log.info('users and %s borrowers', settings.borrowers)
        connection.execute(
            text(
                'INSERT INTO users (login, full_name, password_hash, role, active, failed_logins, '
                'created_at) '
                "SELECT 'bench_op_' || g, 'Оператор ' || g, '!bench', 'operator', true, 0, :now "
                'FROM generate_series(1, :n) g'
            ),
            {'n': OPERATORS, 'now': NOW},
        )
        connection.execute(
            text(
                'INSERT INTO users (login, full_name, password_hash, role, active, failed_logins, '
                'created_at) '
                "VALUES ('bench_supervisor', 'Руководитель', '!bench', 'supervisor', true, 0, :now)"
            ),
            {'now': NOW},
        )
        connection.execute(
            text(
                'INSERT INTO borrowers (id, pin, last_name, first_name, middle_name, search_name, '
                'birth_date, city, timezone, monthly_payment, archived, total_debt, overdue_amount, '
                'days_past_due, created_at) '
                'SELECT g, (1000000000 + g)::text, x.l, x.f, x.m, '
                "lower(replace(x.l || ' ' || x.f || ' ' || x.m, 'ё', 'е')), "
                "date '1960-01-01' + pg_temp.h(g, 1, 15000), 'Москва', 'Europe/Moscow', "
                '0, false, 0, 0, 0, :now '
                'FROM generate_series(1, :n) g, LATERAL (SELECT '
                'CASE WHEN g % 2 = 0 THEN (CAST(:lm AS text[]))[1 + pg_temp.h(g, 2, :nlm)] '
                'ELSE (CAST(:lf AS text[]))[1 + pg_temp.h(g, 2, :nlf)] END AS l, '
                'CASE WHEN g % 2 = 0 THEN (CAST(:fm AS text[]))[1 + pg_temp.h(g, 3, :nfm)] '
                'ELSE (CAST(:ff AS text[]))[1 + pg_temp.h(g, 3, :nff)] END AS f, '
                'CASE WHEN g % 2 = 0 THEN (CAST(:mm AS text[]))[1 + pg_temp.h(g, 4, :nmm)] '
                'ELSE (CAST(:mf AS text[]))[1 + pg_temp.h(g, 4, :nmf)] END AS m) x'
            ),
            {'n': settings.borrowers, 'now': NOW} | names | {f'n{k}': len(v) for k, v in names.items()},
        )
        connection.execute(
            text(
                'INSERT INTO borrower_phones (borrower_id, phone, kind, is_primary) '
                "SELECT g, '79' || lpad(((g::bigint * 613578241 + 5000000) % 1000000000)::text, 9, '0'), "
                "'mobile', true FROM generate_series(1, :n) g"
            ),
            {'n': settings.borrowers},
        )
        load_requests(connection, settings)
    with engine.connect().execution_options(isolation_level='AUTOCOMMIT') as connection:
        connection.execute(text('VACUUM ANALYZE users, borrowers, borrower_phones, requests'))


def load_requests(connection: Connection, settings: Settings) -> None:
    """The requests in the order they were opened (about one every 95 s over three years); the newest
    OPEN_RECENT open (each of a different borrower), one in a thousand older ones left open too."""
    indexes = connection.execute(
        text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'requests' "
            "AND indexname <> 'pk_requests'"
        )
    ).all()
    for name, _ in indexes:
        connection.execute(text(f'DROP INDEX {name}'))
    topics = [code for code, _ in DEFAULT_TOPICS if code in SUBJECTS]
    subjects = [f'{code}|{s}' for code in topics for s in SUBJECTS[code]]
    log.info('%s requests', settings.requests)
    n, step = settings.requests, SPAN_DAYS * 86_400 / settings.requests
    connection.execute(
        text(
            """
INSERT INTO requests (id, borrower_id, origin, channel, topic_code, status, assignee_id, subject, text,
  search_text, opened_at, updated_at, due_on, resolved_at)
SELECT q.g, q.bid, q.origin, q.channel, q.topic, q.status, q.assignee, q.subject, q.body,
  q.subject || ' ' || q.body || ' ' || b.last_name || ' ' || b.first_name || ' ' || b.middle_name
    || ' ' || b.pin || ' ' || p.phone,
  q.opened, q.opened + q.busy, (q.opened AT TIME ZONE 'Europe/Moscow')::date + 21,
  CASE WHEN q.status IN ('resolved', 'closed') THEN q.opened + q.busy END
FROM (
  SELECT g, stale, subj,
    CASE WHEN stale THEN g / 1000 ELSE (g::bigint * 7919) % :nb + 1 END AS bid,
    CASE WHEN stale THEN 'broken_promise' ELSE 'contact' END AS origin,
    CASE WHEN stale THEN 'system' ELSE (ARRAY['call','call','call','chat','chat','email','manual'])[
      1 + pg_temp.h(g, 5, 7)] END AS channel,
    CASE WHEN stale THEN 'broken_promise' ELSE split_part(subj, '|', 1) END AS topic,
    CASE WHEN g > :n - :new THEN 'new'
         WHEN g > :n - :open OR stale
           THEN (ARRAY['in_progress','in_progress','waiting'])[1 + pg_temp.h(g, 6, 3)]
         ELSE (ARRAY['closed','closed','resolved'])[1 + pg_temp.h(g, 6, 3)] END AS status,
    CASE WHEN g > :n - :new THEN NULL ELSE :first_op + pg_temp.h(g, 7, :ops) END AS assignee,
    CASE WHEN stale THEN 'Нарушено обещание' ELSE split_part(subj, '|', 2) END AS subject,
    (CAST(:phrases AS text[]))[1 + pg_temp.h(g, 8, :nphrases)] || ', '
      || (CAST(:phrases AS text[]))[1 + pg_temp.h(g, 9, :nphrases)] || '. '
      || (CAST(:phrases AS text[]))[1 + pg_temp.h(g, 10, :nphrases)] AS body,
    CAST(:t0 AS timestamptz) + make_interval(secs => g * :step + pg_temp.h(g, 11, 60)) AS opened,
    make_interval(secs => 600 + pg_temp.h(g, 12, 20 * 86400)) AS busy
  FROM generate_series(1, :n) g,
    LATERAL (SELECT g % 1000 = 0 AND g <= :n - :open AS stale,
             (CAST(:subjects AS text[]))[1 + pg_temp.h(g, 13, :nsubjects)] AS subj) s
) q
JOIN borrowers b ON b.id = q.bid
JOIN borrower_phones p ON p.borrower_id = q.bid
"""
        ),
        {
            'n': n,
            'nb': settings.borrowers,
            'new': NEW_RECENT,
            'open': OPEN_RECENT,
            'first_op': first_operator(connection),
            'ops': OPERATORS,
            'phrases': list(PHRASES),
            'nphrases': len(PHRASES),
            'subjects': subjects,
            'nsubjects': len(subjects),
            't0': NOW - timedelta(days=SPAN_DAYS),
            'step': step,
        },
    )
    connection.execute(text("SELECT setval(pg_get_serial_sequence('requests', 'id'), :n)"), {'n': n})
    log.info('building %s indexes', len(indexes))
    for name, definition in indexes:
        started = time.perf_counter()
        connection.execute(text(definition))
        log.info('  %s: %.1f s', name, time.perf_counter() - started)


def first_operator(connection: Connection) -> int:
    return int(connection.scalar(text("SELECT min(id) FROM users WHERE login LIKE 'bench_op_%'")) or 0)


# --- measuring --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One thing the page does, and a maker of varied (actor, filters, sort, descending, page)."""

    name: str
    make: Callable[[random.Random], tuple[Actor, RequestFilters, str, bool, int]]


@dataclass(frozen=True)
class Samples:
    supervisor: Actor
    operators: list[Actor]
    pins: list[str]
    phones: list[str]
    names: list[tuple[str, str]]
    topics: list[str]


def samples(engine: Engine) -> Samples:
    with engine.connect() as connection:
        supervisor = connection.execute(
            text("SELECT id, login, full_name FROM users WHERE login = 'bench_supervisor'")
        ).one()
        operators = connection.execute(
            text("SELECT id, login, full_name FROM users WHERE login LIKE 'bench_op_%' ORDER BY id")
        ).all()
        picked = connection.execute(
            text(
                'SELECT b.pin, p.phone, b.last_name, b.first_name FROM requests r '
                'JOIN borrowers b ON b.id = r.borrower_id JOIN borrower_phones p ON p.borrower_id = b.id '
                'WHERE r.id % 997 = 0 LIMIT 1000'
            )
        ).all()
    return Samples(
        supervisor=Actor(supervisor.id, supervisor.login, supervisor.full_name, Role.SUPERVISOR),
        operators=[Actor(o.id, o.login, o.full_name, Role.OPERATOR) for o in operators],
        pins=[row.pin for row in picked],
        phones=[row.phone for row in picked],
        names=[(row.last_name, row.first_name) for row in picked],
        topics=[code for code, _ in DEFAULT_TOPICS],
    )


def phone_as_typed(rng: random.Random, phone: str) -> str:
    return rng.choice((f'+7 {phone[1:4]} {phone[4:7]}-{phone[7:9]}-{phone[9:]}', '8' + phone[1:], phone))


def cases(s: Samples) -> list[Case]:
    sup = s.supervisor
    first_day = (NOW - timedelta(days=SPAN_DAYS)).date()

    def plain(filters: Callable[[random.Random], RequestFilters]) -> Callable[[random.Random], Any]:
        return lambda rng: (sup, filters(rng), 'opened_at', True, rng.choice((1, 1, 1, 2, 3)))

    def week(rng: random.Random) -> RequestFilters:
        start = first_day + timedelta(days=rng.randrange(SPAN_DAYS - 7))
        return RequestFilters(opened_from=start, opened_to=start + timedelta(days=6))

    def sort(column: str) -> Callable[[random.Random], Any]:
        return lambda rng: (sup, RequestFilters(), column, rng.random() < 0.5, rng.choice((1, 1, 1, 2, 5)))

    def search(make: Callable[[random.Random], str]) -> Callable[[random.Random], Any]:
        return lambda rng: (sup, RequestFilters(query=make(rng)), 'opened_at', True, 1)

    def operator(kind: str) -> Callable[[random.Random], Any]:
        def make(rng: random.Random) -> Any:
            actor = rng.choice(s.operators)
            filters = {
                'view': RequestFilters(),
                'mine': RequestFilters(assignee_id=actor.id),
                'queue': RequestFilters(unassigned=True),
            }[kind]
            return actor, filters, 'opened_at', True, rng.choice((1, 1, 2))

        return make

    statuses, channels = list(REQUEST_STATUS_LABELS), list(REQUEST_CHANNEL_LABELS)
    filters: dict[str, Callable[[random.Random], RequestFilters]] = {
        'status': lambda rng: RequestFilters(statuses=(rng.choice(statuses),)),
        'status_open': lambda rng: RequestFilters(statuses=('new', 'in_progress', 'waiting')),
        'channel': lambda rng: RequestFilters(channel=rng.choice(channels)),
        'topic': lambda rng: RequestFilters(topic=rng.choice(s.topics)),
        'operator': lambda rng: RequestFilters(assignee_id=rng.choice(s.operators).id),
        'unassigned': lambda rng: RequestFilters(unassigned=True),
        'deadline': lambda rng: RequestFilters(deadline=rng.choice(('overdue', 'warning', 'on_time'))),
        'opened_week': week,
    }
    searches: dict[str, Callable[[random.Random], str]] = {
        'name': lambda rng: ' '.join(rng.choice(s.names)),
        'last_name': lambda rng: rng.choice(s.names)[0],
        'pin': lambda rng: rng.choice(s.pins),
        'phone': lambda rng: phone_as_typed(rng, rng.choice(s.phones)),
        'words': lambda rng: ' '.join(rng.choice(PHRASES).split()[:2]),
    }
    return [
        *(Case(f'filter_{name}', plain(make)) for name, make in filters.items()),
        *(Case(f'operator_{kind}', operator(kind)) for kind in ('view', 'mine', 'queue')),
        *(Case(f'sort_{column}', sort(column)) for column in SORTS),
        *(Case(f'search_{name}', search(make)) for name, make in searches.items()),
    ]


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(engine: Engine, settings: Settings) -> dict[str, dict[str, float | bool]]:
    views = RequestViews(make_sessions(engine), limits=CallLimits(), clock=SettableClock(NOW))
    s = samples(engine)
    rng = random.Random(20261203)
    results: dict[str, dict[str, float | bool]] = {}
    for case in cases(s):
        for _ in range(WARMUP):
            views.page(*case.make(rng)[:4])
        timings, found = [], []
        for _ in range(settings.queries):
            actor, filters, sort, descending, page = case.make(rng)
            started = time.perf_counter()
            result = views.page(actor, filters, sort, descending, page, PER_PAGE)
            timings.append((time.perf_counter() - started) * 1000)
            found.append(result.total)
        p95 = percentile(timings, 0.95)
        results[case.name] = {
            'p50_ms': round(statistics.median(timings), 2),
            'p95_ms': round(p95, 2),
            'p99_ms': round(percentile(timings, 0.99), 2),
            'max_ms': round(max(timings), 2),
            'mean_total': round(statistics.fmean(found), 1),
            'met': p95 <= TARGET_MS,
        }
        log.info('%-22s p50 %6.2f  p95 %6.2f ms', case.name, results[case.name]['p50_ms'], p95)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format='%(asctime)s %(message)s')
    settings = parse_settings(argv)
    if settings is None:
        print(json.dumps({'benchmark': 'requests', 'skipped': f'{URL_VARIABLE} (PostgreSQL) is not set'}))
        return 0
    load_s, reused = prepare(settings)
    load_avg = os.getloadavg()[0]
    engine = make_engine(settings.url)
    try:
        results = measure(engine, settings)
    finally:
        engine.dispose()
    report = {
        'benchmark': 'requests',
        'backend': 'postgresql',
        'requests': settings.requests,
        'borrowers': settings.borrowers,
        'queries_per_case': settings.queries,
        'per_page': PER_PAGE,
        'load_s': load_s,
        'reused': reused,
        'machine': machine(load_avg),
        'target_p95_ms': TARGET_MS,
        'results': results,
        'met': all(bool(r['met']) for r in results.values()),
    }
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == '__main__':
    sys.exit(main())
