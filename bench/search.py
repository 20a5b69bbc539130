"""Search and card latency on a large generated borrower base; run by `make bench`.

PostgreSQL when CRM_BENCH_DATABASE_URL is set (1,000,000 borrowers, loaded with COPY), otherwise
SQLite in var/bench/search.sqlite3 (100,000 borrowers). A database this script loaded with the same
count, seed, generator version and schema revision is reused; --reload wipes it first. Logs go to stderr;
stdout gets exactly one JSON object with the timings of BorrowerService.search and .card.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.harness

from crm.db.engine import make_engine, make_sessions
from crm.db.migrate import create_database_if_missing, head_revision, upgrade
from crm.db.models import Borrower, BorrowerPhone, Loan, User
from crm.domain import LOAN_STATUSES, RESULT_CODES, Role
from crm.domain.actor import Actor
from crm.domain.identifiers import (
    format_phone,
    format_snils,
    inn_with_check_digits,
    name_key,
    snils_check_digits,
)
from crm.services.borrowers import BorrowerService
from tests.harness import machine, reset_postgres_schema

log = logging.getLogger('bench.search')

ROOT = Path(__file__).resolve().parent.parent
SQLITE_PATH = ROOT / 'var' / 'bench' / 'search.sqlite3'
URL_VARIABLE = 'CRM_BENCH_DATABASE_URL'
GENERATOR_VERSION = '1'
SEED = 20261126
CHUNK = 20_000  # borrowers generated and sent per round
WARMUP = 50
ARCHIVED_SHARE = 0.03
MAX_COMMUNICATIONS = 5
BENCH_LOGIN = 'bench'
EXACT_KINDS = ('phone', 'passport', 'pin', 'inn', 'snils', 'loan', 'email', 'phone_tail')
NAME_KINDS = ('name', 'name_single')
KINDS = (*NAME_KINDS, *EXACT_KINDS, 'card')
TARGETS_MS = {'exact_p95_ms': 10, 'name_p95_ms': 50, 'card_p95_ms': 30}

CITIES = (
    ('Москва', 'Europe/Moscow'),
    ('Санкт-Петербург', 'Europe/Moscow'),
    ('Казань', 'Europe/Moscow'),
    ('Ростов-на-Дону', 'Europe/Moscow'),
    ('Краснодар', 'Europe/Moscow'),
    ('Воронеж', 'Europe/Moscow'),
    ('Нижний Новгород', 'Europe/Moscow'),
    ('Махачкала', 'Europe/Moscow'),
    ('Калининград', 'Europe/Kaliningrad'),
    ('Самара', 'Europe/Samara'),
    ('Саратов', 'Europe/Saratov'),
    ('Волгоград', 'Europe/Volgograd'),
    ('Екатеринбург', 'Asia/Yekaterinburg'),
    ('Челябинск', 'Asia/Yekaterinburg'),
    ('Уфа', 'Asia/Yekaterinburg'),
    ('Пермь', 'Asia/Yekaterinburg'),
    ('Тюмень', 'Asia/Yekaterinburg'),
    ('Омск', 'Asia/Omsk'),
    ('Новосибирск', 'Asia/Novosibirsk'),
    ('Барнаул', 'Asia/Barnaul'),
    ('Красноярск', 'Asia/Krasnoyarsk'),
    ('Иркутск', 'Asia/Irkutsk'),
    ('Якутск', 'Asia/Yakutsk'),
    ('Хабаровск', 'Asia/Vladivostok'),
    ('Владивосток', 'Asia/Vladivostok'),
)
STREETS = ('Ленина', 'Мира', 'Советская', 'Гагарина', 'Садовая', 'Лесная', 'Школьная', 'Молодёжная')
EMPLOYERS = ('ООО «Ромашка»', 'АО «Стройсервис»', 'ИП Петров', 'ПАО «Связь»', 'МУП «Водоканал»', 'ООО «Торг»')
PRODUCTS = ('До зарплаты', 'Стандарт', 'Лояльный', 'Долгосрочный')
COMMENTS = (
    'Обещал оплатить после зарплаты',
    'Просит перезвонить вечером',
    'Не берёт трубку',
    'Сообщил о смене работы',
    'Уточнил сумму задолженности',
    None,
)
BORROWER_COLUMNS = (
    'id', 'pin', 'last_name', 'first_name', 'middle_name', 'search_name', 'birth_date', 'inn', 'snils',
    'passport', 'passport_issued', 'email', 'address', 'city', 'timezone', 'employer', 'monthly_payment',
    'assigned_operator_id', 'archived', 'total_debt', 'overdue_amount', 'days_past_due', 'last_contact_at',
    'created_at',
)  # fmt: skip
PHONE_COLUMNS = ('id', 'borrower_id', 'phone', 'kind', 'is_primary')
LOAN_COLUMNS = (
    'id', 'borrower_id', 'number', 'product', 'amount', 'term_days', 'rate', 'issued_on', 'due_on', 'state',
    'status_code', 'status_name', 'principal_outstanding', 'total_debt', 'overdue_amount', 'days_past_due',
    'closed_on',
)  # fmt: skip
COMMUNICATION_COLUMNS = (
    'id', 'borrower_id', 'operator_id', 'channel', 'direction', 'started_at', 'ended_at', 'phone',
    'result_code', 'result_name', 'reached', 'promise_amount', 'promise_date', 'comment', 'duration_s',
)  # fmt: skip
TABLES = {
    'borrowers': BORROWER_COLUMNS,
    'borrower_phones': PHONE_COLUMNS,
    'loans': LOAN_COLUMNS,
    'communications': COMMUNICATION_COLUMNS,
}

RESULTS = tuple(RESULT_CODES)
Row = tuple[Any, ...]


# --- settings -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    url: str
    backend: str
    borrowers: int
    queries: int
    reload: bool
    seed: int
    kinds: tuple[str, ...] = KINDS


def parse_settings(argv: Sequence[str] | None = None) -> Settings:
    """Command line and CRM_BENCH_DATABASE_URL -> Settings."""
    parser = argparse.ArgumentParser(description='Benchmark borrower search and the card.')
    parser.add_argument('--borrowers', type=int, help='borrowers to load (1,000,000 PG / 100,000 SQLite)')
    parser.add_argument('--queries', type=int, default=500, help='timed queries per kind (default 500)')
    parser.add_argument('--reload', action='store_true', help='wipe the database and load it anew')
    parser.add_argument('--seed', type=int, default=SEED, help='seed of the generated data')
    parser.add_argument(
        '--kinds', default=','.join(KINDS), help=f'comma-separated subset of {",".join(KINDS)}'
    )
    args = parser.parse_args(argv)
    kinds = tuple(k.strip() for k in args.kinds.split(',') if k.strip())
    if unknown := set(kinds) - set(KINDS):
        parser.error(f'unknown kinds: {", ".join(sorted(unknown))}')
    url = os.environ.get(URL_VARIABLE) or f'sqlite:///{SQLITE_PATH}'
    backend = make_url(url).get_backend_name()
    default = 1_000_000 if backend == 'postgresql' else 100_000
    return Settings(url, backend, args.borrowers or default, args.queries, args.reload, args.seed, kinds)


# --- generated identifiers: affine maps of the index, so unique without any lookup ---------------
def pin_for(i: int) -> str:
    return str(1_000_000_000 + (7_919_843_417 * i + 12_345) % 9_000_000_000)


def passport_for(i: int) -> str:
    return f'{(3_987_654_321 * i + 4_510_000_000) % 10**10:010d}'


def inn_for(i: int) -> str:
    return inn_with_check_digits(str(1_000_000_000 + (7_123_456_789 * i + 777) % 9_000_000_000))


def snils_for(i: int) -> str:
    first_nine = f'{1_002_000 + (486_913_247 * i) % 998_998_000:09d}'
    return first_nine + snils_check_digits(first_nine)


def phone_for(j: int) -> str:
    return f'79{(613_578_241 * j + 5_000_000) % 10**9:09d}'


def stamp(moment: datetime) -> str:
    """A UTC moment as the text both backends take ('2026-01-02 03:04:05.000000', zone UTC)."""
    return moment.isoformat(' ', 'microseconds')


# --- names --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NamePools:
    """Faker's ru_RU name lists; last names weighted by rank (Смирнов is commoner than the 250th)."""

    male: tuple[list[str], tuple[str, ...], tuple[str, ...]]
    female: tuple[list[str], tuple[str, ...], tuple[str, ...]]

    def pick(self, rng: random.Random, female: bool) -> tuple[str, str, str]:
        last, first, middle = self.female if female else self.male
        return rng.choice(last), rng.choice(first), rng.choice(middle)


def weighted_table(names: Sequence[str], size: int = 20_000) -> list[str]:
    """A list in which each name appears about size / (rank + 30) / H times: rng.choice is weighted."""
    weights = [1 / (rank + 30) for rank in range(len(names))]
    total = sum(weights)
    return [
        name for name, w in zip(names, weights, strict=True) for _ in range(max(1, round(size * w / total)))
    ]


def name_pools() -> NamePools:
    from faker.providers.person.ru_RU import Provider

    return NamePools(
        male=(
            weighted_table(Provider.last_names_male),
            tuple(Provider.first_names_male),
            tuple(Provider.middle_names_male),
        ),
        female=(
            weighted_table(Provider.last_names_female),
            tuple(Provider.first_names_female),
            tuple(Provider.middle_names_female),
        ),
    )


# --- generation ---------------------------------------------------------------------------------
@dataclass
class Chunk:
    borrowers: list[Row] = field(default_factory=list)
    borrower_phones: list[Row] = field(default_factory=list)
    loans: list[Row] = field(default_factory=list)
    communications: list[Row] = field(default_factory=list)

    def rows(self, table: str) -> list[Row]:
        return getattr(self, table)


class FastRandom(random.Random):
    """random.Random with randint and choice scaled from random(): about three times cheaper."""

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))

    def choice(self, seq: Sequence[Any]) -> Any:  # type: ignore[override]
        return seq[int(self.random() * len(seq))]


class Generator:
    """Borrowers with phones, loans and communications, deterministic for a seed and visiting order."""

    def __init__(self, seed: int, operator_id: int) -> None:
        self.rng = FastRandom(seed)
        self.pools = name_pools()
        self.operator_id = operator_id
        self.now = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
        self.today = self.now.date()
        self.loan_id = 0
        self.communication_id = 0

    def chunks(self, count: int, size: int = CHUNK) -> Iterator[Chunk]:
        for first in range(1, count + 1, size):
            chunk = Chunk()
            for borrower_id in range(first, min(first + size, count + 1)):
                self.borrower(borrower_id, chunk)
            yield chunk

    def borrower(self, bid: int, out: Chunk) -> None:
        rng = self.rng
        last, first, middle = self.pools.pick(rng, female=rng.random() < 0.54)
        archived = rng.random() < ARCHIVED_SHARE
        city, zone = rng.choice(CITIES)
        phones = self.phones(bid, out)
        debt, overdue, days = self.loans(bid, archived, out)
        last_contact = self.communications(bid, phones, out)
        created = self.now - timedelta(days=rng.randint(760, 2000), seconds=rng.randint(0, 86_399))
        out.borrowers.append((
            bid, pin_for(bid), last, first, middle, name_key(f'{last} {first} {middle}'),
            (date(1955, 1, 1) + timedelta(days=rng.randint(0, 18_249))).isoformat(),
            inn_for(bid), snils_for(bid), passport_for(bid), f'ГУ МВД России по г. {city}',
            f'user{bid}@mail.example' if rng.random() < 0.4 else None,
            f'г. {city}, ул. {rng.choice(STREETS)}, д. {rng.randint(1, 120)}, кв. {rng.randint(1, 300)}',
            city, zone, rng.choice(EMPLOYERS) if rng.random() < 0.6 else None,
            rng.randint(1_000, 20_000) * 100, None, archived, debt, overdue, days,
            last_contact, stamp(created),
        ))  # fmt: skip

    def phones(self, bid: int, out: Chunk) -> list[str]:
        numbers = [phone_for(2 * bid)]
        if self.rng.random() < 0.4:
            numbers.append(phone_for(2 * bid + 1))
        for k, number in enumerate(numbers):
            out.borrower_phones.append((2 * bid + k, bid, number, 'mobile' if k == 0 else 'home', k == 0))
        return numbers

    def loans(self, bid: int, archived: bool, out: Chunk) -> tuple[int, int, int]:
        """Append 1-2 loans; return the borrower's total debt, overdue amount and days past due."""
        rng = self.rng
        debt = overdue = days_max = 0
        for k in range(1 if rng.random() < 0.6 else 2):
            self.loan_id += 1
            amount = rng.randint(6, 200) * 50_000
            term = rng.choice((14, 21, 30, 60, 90, 180, 365))
            issued = self.today - timedelta(days=rng.randint(1, 720))
            due = issued + timedelta(days=term)
            state, code, principal, total, late, days, closed = self.loan_state(archived, amount, due)
            debt, overdue, days_max = debt + total, overdue + late, max(days_max, days)
            out.loans.append((
                self.loan_id, bid, f'ЗМ-{bid:08d}-{k + 1}', rng.choice(PRODUCTS), amount, term,
                f'{rng.choice((0.5, 0.8, 0.9, 1.0)):.3f}', issued.isoformat(), due.isoformat(), state,
                code, LOAN_STATUSES[code], principal, total, late, days, closed,
            ))  # fmt: skip
        return debt, overdue, days_max

    def loan_state(self, archived: bool, amount: int, due: date) -> tuple[str, int, int, int, int, int, Any]:
        """state, status code, principal, total debt, overdue amount, days past due, closed on."""
        rng = self.rng
        if archived or rng.random() < 0.3:
            state, code = ('archived', 5000) if archived else ('closed', rng.choice((4000, 4100)))
            return state, code, 0, 0, 0, 0, min(due, self.today).isoformat()
        principal = amount * rng.randint(20, 100) // 100
        total = principal * rng.randint(100, 180) // 100
        days = 0 if rng.random() < 0.55 else rng.randint(1, 400)
        code = rng.choice((2000, 2100)) if days == 0 else rng.choice((3000, 3000, 3100, 3200))
        late = total * rng.randint(10, 100) // 100 if days else 0
        return 'active', code, principal, total, late, days, None

    def communications(self, bid: int, phones: list[str], out: Chunk) -> str | None:
        """Append 0-5 contacts; return the latest start (the borrower's last_contact_at) or None."""
        rng = self.rng
        latest: datetime | None = None
        for _ in range(rng.randint(0, MAX_COMMUNICATIONS)):
            self.communication_id += 1
            started = self.now - timedelta(seconds=rng.randint(0, 365 * 86_400 - 1))
            latest = started if latest is None or started > latest else latest
            result = rng.choice(RESULTS)
            name, reached = RESULT_CODES[result]
            duration = rng.randint(5, 600) if reached else rng.randint(0, 40)
            promise = result == 'promise'
            out.communications.append((
                self.communication_id, bid, self.operator_id, rng.choice(('call_out', 'call_out', 'call_in')),
                'out' if rng.random() < 0.7 else 'in', stamp(started),
                stamp(started + timedelta(seconds=duration)), rng.choice(phones), result, name, reached,
                rng.randint(10, 200) * 10_000 if promise else None,
                (started.date() + timedelta(days=rng.randint(1, 14))).isoformat() if promise else None,
                rng.choice(COMMENTS), duration,
            ))  # fmt: skip
        return stamp(latest) if latest else None


# --- the marker and the users -------------------------------------------------------------------
def wanted_marker(settings: Settings) -> dict[str, str]:
    """What a reusable database must have been loaded with, including the schema revision.

    A database at an older revision is reloaded, not upgraded: upgrading keeps no promise about
    the generated rows (a SQLite batch migration can even cascade-delete them).
    """
    return {
        'borrowers': str(settings.borrowers),
        'seed': str(settings.seed),
        'version': GENERATOR_VERSION,
        'revision': head_revision(settings.url) or '',
    }


def read_marker(engine: Engine) -> dict[str, str] | None:
    if not inspect(engine).has_table('bench_meta'):
        return None
    with engine.connect() as connection:
        return {key: value for key, value in connection.execute(text('SELECT key, value FROM bench_meta'))}


def write_marker(connection: Connection, values: dict[str, str]) -> None:
    connection.execute(
        text('CREATE TABLE IF NOT EXISTS bench_meta (key VARCHAR(32) PRIMARY KEY, value TEXT)')
    )
    connection.execute(text('DELETE FROM bench_meta'))
    rows = [{'key': key, 'value': value} for key, value in values.items()]
    connection.execute(text('INSERT INTO bench_meta (key, value) VALUES (:key, :value)'), rows)


def marker_matches(marker: dict[str, str] | None, settings: Settings) -> bool:
    return marker is not None and all(marker.get(k) == v for k, v in wanted_marker(settings).items())


def bench_user(connection: Connection) -> int:
    """The id of the admin the benchmark acts as, inserted if missing."""
    found = connection.scalar(select(User.id).where(User.login == BENCH_LOGIN))
    if found is not None:
        return found
    user = {
        'login': BENCH_LOGIN,
        'full_name': 'Bench',
        'password_hash': '!bench-no-login',
        'role': Role.ADMIN.value,
        'active': True,
        'failed_logins': 0,
        'created_at': datetime.now(UTC),
    }
    return connection.execute(insert(User).returning(User.id), user).scalar_one()


# --- wiping and preparing -----------------------------------------------------------------------
def wipe(settings: Settings) -> None:
    """Drop everything: the SQLite file, or the public schema of the PostgreSQL database."""
    log.info('wiping the bench database')
    if settings.backend == 'sqlite':
        for suffix in ('', '-wal', '-shm'):
            Path(f'{SQLITE_PATH}{suffix}').unlink(missing_ok=True)
        return
    reset_postgres_schema(settings.url)


def borrower_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(Borrower)) or 0


def prepare(settings: Settings) -> tuple[float | None, bool]:
    """Make the database hold the wanted data; return (load seconds, whether it was reused)."""
    if settings.backend == 'postgresql':
        create_database_if_missing(settings.url)
    engine = make_engine(settings.url)
    try:
        marker = read_marker(engine)
        stale = marker is not None and not marker_matches(marker, settings)
    finally:
        engine.dispose()
    if settings.reload or stale:
        wipe(settings)
    upgrade(settings.url)
    engine = make_engine(settings.url)
    try:
        marker = read_marker(engine)
        if marker_matches(marker, settings):
            log.info('reusing the loaded database (%s borrowers)', settings.borrowers)
            seconds = marker.get('load_s') if marker else None
            return (float(seconds) if seconds else None), True
        if borrower_count(engine):
            raise SystemExit('the bench database holds borrowers this script did not load: pass --reload')
        return load(engine, settings), False
    finally:
        engine.dispose()


# --- loading ------------------------------------------------------------------------------------
def load(engine: Engine, settings: Settings) -> float:
    """Generate and load everything in one transaction, with the marker; return the seconds taken."""
    log.info('loading %s borrowers into %s', settings.borrowers, settings.backend)
    started = time.perf_counter()
    with engine.begin() as connection:
        generator = Generator(settings.seed, bench_user(connection))
        chunks = generator.chunks(settings.borrowers)
        raw = connection.connection.driver_connection
        assert raw is not None
        if settings.backend == 'postgresql':
            load_postgres(raw, chunks, settings.borrowers)
        else:
            load_sqlite(raw, chunks, settings.borrowers)
        write_marker(connection, wanted_marker(settings) | {'load_s': f'{time.perf_counter() - started:.1f}'})
    analyze(engine, settings.backend)
    seconds = time.perf_counter() - started
    log.info('loaded in %.1f s', seconds)
    with engine.begin() as connection:
        write_marker(connection, wanted_marker(settings) | {'load_s': f'{seconds:.1f}'})
    return seconds


def progress(done: int, total: int, started: float) -> None:
    if done % (CHUNK * 10) == 0 or done >= total:
        log.info('  %s / %s borrowers, %.0f s', done, total, time.perf_counter() - started)


def load_sqlite(raw: sqlite3.Connection, chunks: Iterator[Chunk], total: int) -> None:
    """executemany in big batches; the caller's transaction wraps it all."""
    started, done = time.perf_counter(), 0
    for chunk in chunks:
        for table, columns in TABLES.items():
            marks = ', '.join('?' * len(columns))
            raw.executemany(f'INSERT INTO {table} ({", ".join(columns)}) VALUES ({marks})', chunk.rows(table))
        done += len(chunk.borrowers)
        progress(done, total, started)


def load_postgres(raw: Any, chunks: Iterator[Chunk], total: int) -> None:
    """COPY into the tables with their secondary indexes and constraints dropped, then rebuild them."""
    with raw.cursor() as cursor:
        cursor.execute("SET LOCAL TIME ZONE 'UTC'")
        cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
        constraints, indexes = pg_secondary(cursor)
        for table, name, _ in constraints:
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT {name}')
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX {name}')
        started, done = time.perf_counter(), 0
        for chunk in chunks:
            for table, columns in TABLES.items():
                with cursor.copy(f'COPY {table} ({", ".join(columns)}) FROM STDIN') as copy:
                    for row in chunk.rows(table):
                        copy.write_row(row)
            done += len(chunk.borrowers)
            progress(done, total, started)
        rebuild(cursor, indexes, constraints)
        for table in TABLES:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )


def pg_secondary(cursor: Any) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """Non-key constraints (foreign keys first) and plain indexes of the loaded tables, to drop."""
    tables = list(TABLES)
    cursor.execute(
        'SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint '
        "WHERE conrelid::regclass::text = ANY(%s) AND contype IN ('f', 'u') ORDER BY contype, conname",
        (tables,),
    )
    constraints = cursor.fetchall()
    cursor.execute(
        'SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() '
        'AND tablename = ANY(%s) AND indexname NOT IN (SELECT conname FROM pg_constraint) ORDER BY 1',
        (tables,),
    )
    return constraints, cursor.fetchall()


def rebuild(cursor: Any, indexes: list[tuple[str, str]], constraints: list[tuple[str, str, str]]) -> None:
    """Recreate the dropped indexes, then unique constraints, then foreign keys."""
    for name, definition in indexes:
        started = time.perf_counter()
        cursor.execute(definition)
        log.info('  index %s: %.1f s', name, time.perf_counter() - started)
    for table, name, definition in sorted(constraints, key=lambda c: c[2].startswith('FOREIGN')):
        started = time.perf_counter()
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT {name} {definition}')
        log.info('  constraint %s: %.1f s', name, time.perf_counter() - started)


def analyze(engine: Engine, backend: str) -> None:
    """Fresh statistics (and, on PostgreSQL, the visibility map) as a settled database would have."""
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level='AUTOCOMMIT') as connection:
        connection.exec_driver_sql('VACUUM ANALYZE' if backend == 'postgresql' else 'ANALYZE')
    log.info('analyze: %.1f s', time.perf_counter() - started)


# --- targets and queries ------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    id: int
    pin: str
    passport: str
    inn: str
    snils: str
    last_name: str
    first_name: str
    phones: tuple[str, ...]
    email: str | None
    loans: tuple[str, ...]


def pick_targets(engine: Engine, rng: random.Random, count: int) -> list[Target]:
    """Random borrowers that are not archived (search hides the archive by default)."""
    with Session(engine) as session:
        low, high = session.execute(select(func.min(Borrower.id), func.max(Borrower.id))).one()
        ids = rng.sample(range(low, high + 1), min(count, high - low + 1))
        borrowers: list[Borrower] = []
        for start in range(0, len(ids), 1000):
            part = ids[start : start + 1000]
            borrowers += session.scalars(
                select(Borrower).where(Borrower.id.in_(part), Borrower.archived.is_(False))
            )
    ids = [b.id for b in borrowers]
    phones = values_of(engine, BorrowerPhone.borrower_id, BorrowerPhone.phone, ids)
    loans = values_of(engine, Loan.borrower_id, Loan.number, ids)
    return [
        Target(
            b.id,
            b.pin,
            b.passport,
            b.inn,
            b.snils,
            b.last_name,
            b.first_name,
            tuple(phones[b.id]),
            b.email,
            tuple(loans[b.id]),
        )
        for b in borrowers
        if b.passport and b.inn and b.snils  # the bench loads all three for everyone
    ]


def values_of(engine: Engine, owner: Any, value: Any, ids: list[int]) -> dict[int, list[str]]:
    """A child table's values by borrower (phones, loan numbers), a thousand borrowers a query."""
    found: dict[int, list[str]] = {}
    with engine.connect() as connection:
        for start in range(0, len(ids), 1000):
            query = select(owner, value).where(owner.in_(ids[start : start + 1000]))
            for borrower_id, item in connection.execute(query):
                found.setdefault(borrower_id, []).append(item)
    return found


def fragment(rng: random.Random, word: str, shortest: int, longest: int) -> str:
    """A random substring of shortest..longest letters (the whole word if it is shorter)."""
    key = name_key(word)
    size = min(len(key), rng.randint(shortest, longest))
    start = rng.randint(0, len(key) - size)
    return key[start : start + size]


def phone_text(rng: random.Random, phone: str) -> str:
    """How people type a phone: '+7 928 000-99-77', '89280009977' or '8 (928) 000-99-77'."""
    style = rng.randrange(3)
    if style == 0:
        return format_phone(phone)
    if style == 1:
        return '8' + phone[1:]
    return f'8 ({phone[1:4]}) {phone[4:7]}-{phone[7:9]}-{phone[9:]}'


def query_text(kind: str, target: Target, rng: random.Random) -> str:
    if kind == 'name':
        return f'{fragment(rng, target.last_name, 4, 6)} {name_key(target.first_name)[: rng.randint(3, 5)]}'
    if kind == 'name_single':
        return fragment(rng, target.last_name, 5, 7)
    if kind == 'phone':
        return phone_text(rng, rng.choice(target.phones))
    if kind == 'passport':
        return f'{target.passport[:4]} {target.passport[4:]}'
    if kind == 'snils':
        return format_snils(target.snils)
    if kind == 'loan':
        return rng.choice(target.loans)
    if kind == 'email':
        return (target.email or '').upper()  # as typed, in any case
    if kind == 'phone_tail':
        return rng.choice(target.phones)[-7:]  # '0009977'
    return getattr(target, kind)  # pin, inn


# --- measuring ----------------------------------------------------------------------------------
@dataclass
class Outcome:
    """Timings of one kind, with what the searches found."""

    times_ms: list[float] = field(default_factory=list)
    results: list[int] = field(default_factory=list)
    found: int = 0

    def summary(self, kind: str) -> dict[str, float | int]:
        cuts = statistics.quantiles(self.times_ms, n=100, method='inclusive')
        out: dict[str, float | int] = {
            'p50_ms': round(cuts[49], 2),
            'p95_ms': round(cuts[94], 2),
            'p99_ms': round(cuts[98], 2),
            'mean_ms': round(statistics.fmean(self.times_ms), 2),
            'max_ms': round(max(self.times_ms), 2),
            'n': len(self.times_ms),
        }
        if kind in NAME_KINDS:
            out['mean_results'] = round(statistics.fmean(self.results), 1)
        if kind in NAME_KINDS or kind in EXACT_KINDS:
            out['target_found_share'] = round(self.found / len(self.times_ms), 3)
        return out


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) * 1000, result


def run_kind(
    service: BorrowerService, actor: Actor, kind: str, work: list[tuple[Target | int, str]]
) -> Outcome:
    outcome = Outcome()
    for target, query in work:
        if isinstance(target, int):  # a card: the target is a borrower id
            ms, _ = timed(partial(service.card, actor, target))
            outcome.times_ms.append(ms)
            continue
        ms, result = timed(partial(service.search, actor, query))
        outcome.times_ms.append(ms)
        outcome.results.append(len(result.items))
        outcome.found += any(item.id == target.id for item in result.items)
    return outcome


def plan(engine: Engine, settings: Settings, rng: random.Random) -> dict[str, list[tuple[Target | int, str]]]:
    """The queries of every kind: search texts built from random borrowers, and random card ids."""
    pool = pick_targets(engine, rng, settings.queries * 3)
    work: dict[str, list[tuple[Target | int, str]]] = {}
    for kind in (*NAME_KINDS, *EXACT_KINDS):
        candidates = [t for t in pool if t.email] if kind == 'email' else pool
        chosen = [rng.choice(candidates) for _ in range(settings.queries)]
        work[kind] = [(t, query_text(kind, t, rng)) for t in chosen]
    with engine.connect() as connection:
        low, high = connection.execute(select(func.min(Borrower.id), func.max(Borrower.id))).one()
    work['card'] = [(rng.randint(low, high), '') for _ in range(settings.queries)]
    return work


def measure(engine: Engine, settings: Settings, actor_id: int) -> dict[str, dict[str, float | int]]:
    rng = random.Random(settings.seed + 1)
    work = plan(engine, settings, rng)
    service = BorrowerService(make_sessions(engine))
    actor = Actor(id=actor_id, login=BENCH_LOGIN, full_name='Bench', role=Role.ADMIN)
    work = {kind: items for kind, items in work.items() if kind in settings.kinds}
    warmup = [(kind, item) for kind, items in work.items() for item in items[:WARMUP]]
    for kind, item in rng.sample(warmup, min(WARMUP, len(warmup))):
        run_kind(service, actor, kind, [item])
    results = {}
    for kind, items in work.items():
        log.info('timing %s (%s queries), e.g. %r', kind, len(items), items[0][1] or items[0][0])
        results[kind] = run_kind(service, actor, kind, items).summary(kind)
        log.info('  %s', results[kind])
    return results


def met(results: dict[str, dict[str, float | int]]) -> dict[str, bool]:
    def limit(kind: str) -> int:
        if kind == 'card':
            return TARGETS_MS['card_p95_ms']
        return TARGETS_MS['name_p95_ms' if kind in NAME_KINDS else 'exact_p95_ms']

    return {kind: summary['p95_ms'] <= limit(kind) for kind, summary in results.items()}


def server_version(engine: Engine) -> str:
    if engine.dialect.name == 'sqlite':
        return f'SQLite {sqlite3.sqlite_version}'
    with engine.connect() as connection:
        return str(connection.scalar(text('SHOW server_version')))


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format='%(asctime)s %(message)s')
    settings = parse_settings(argv)
    load_s, reused = prepare(settings)
    load_avg = os.getloadavg()[0]
    engine = make_engine(settings.url)
    try:
        with engine.connect() as connection:
            actor_id = connection.scalar(select(User.id).where(User.login == BENCH_LOGIN))
        assert actor_id is not None, 'the bench user is loaded with the borrowers'
        results = measure(engine, settings, actor_id)
        report = {
            'backend': settings.backend,
            'server': server_version(engine),
            'borrowers': settings.borrowers,
            'load_s': None if load_s is None else round(load_s, 1),
            'reused': reused,
            'queries_per_kind': settings.queries,
            'machine': machine(load_avg),
            'results': results,
            'targets': TARGETS_MS,
            'met': met(results),
        }
    finally:
        engine.dispose()
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == '__main__':
    sys.exit(main())
