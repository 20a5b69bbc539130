"""Screen-pop latency in real browser tabs and consumer throughput (a companion of search.py).

PostgreSQL + RabbitMQ when CRM_BENCH_DATABASE_URL and CRM_BENCH_AMQP_URL are set, otherwise a SQLite
file under var/bench/ and the in-process bus, with events POSTed to /api/v1/events. The bench database
is wiped, migrated and seeded on every run; the app runs as a subprocess on a free loopback port and
`--tabs` operators are logged in, each in its own browser context of one headless Chromium.

1. Pop latency: `--calls` incoming calls, one at a time, round-robin over the tabs' extensions, each
   for a different borrower with a phone of their own. A MutationObserver in each tab stamps (epoch ms)
   the moment the borrower's full name reaches the DOM (the pop), the card's 'PIN: …' line and the
   borrower's INN (the personal-data grid: the whole card); latency = that stamp - the wall clock
   taken just before basic_publish (or the HTTP POST). The next call goes `--interval` seconds after
   the card is shown (two calls a second: several times the busiest hour of a hundred-seat centre).
   Then `--fresh-calls` calls each into a page loaded anew: the target tab goes to the borrower list,
   waits for its websocket and `--fresh-wait` seconds, then the call. Then `--back-to-back` more calls
   with no pause at all. Both reported apart: a new document draws its first card (and whatever that
   card needs loaded), and back to back the browser still paints the last card on the same two cores.
2. Throughput: `--burst` incoming calls to extensions without open tabs, published as fast as possible
   from a few threads (no confirms), until `SELECT count(*) FROM calls` shows them all committed.

Logs go to stderr; stdout gets exactly one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import random
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.harness

from live_app import (
    HANDSHAKE_JS,
    App,
    Backend,
    Publisher,
    known,
    prepare_vhost,
    queue_consumers,
    sign_in,
    start_app,
    summary,
)

from crm.db.engine import make_engine, make_sessions
from crm.db.migrate import create_database_if_missing, upgrade
from crm.db.models import AuditEntry, Borrower, BorrowerPhone, Call, InboundEvent, User
from crm.domain import Role
from crm.domain.passwords import hash_password
from crm.integrations.bus import EVENTS_QUEUE
from tests.harness import CHROMIUM, CHROMIUM_ARGS, machine, publish_burst, reset_postgres_schema

log = logging.getLogger('bench.screen_pop')

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / 'var' / 'bench'
SQLITE_PATH = BENCH_DIR / 'screen_pop.sqlite3'
APP_VAR_DIR = BENCH_DIR / 'screen_pop_app'
INCOMING = 'telephony.call.incoming'
PASSWORD = 'operator'
FIRST_EXTENSION = 2001
BURST_EXTENSIONS = ('101', '102', '103', '104', '105')  # demo operators: nobody has a tab open
TARGETS = {'pop_p99_ms': 50, 'card_p99_ms': 50, 'fresh_card_p99_ms': 100, 'events_per_s': 1000}
SEED = 20261126

# Installed in every tab once it shows its list (with page.evaluate, so a reload drops it: it is
# installed again in the new document). The observer looks only at what was added or changed: for the
# call in window.__expect it stamps the first appearance of each of its marks (the full name: the pop;
# 'PIN: …': the card's heading; the INN: the personal-data grid, the whole card), and wakes the waiter
# from __waitSeen once all are there.
OBSERVER_JS = """
() => {
  window.__stamps = {};  // call id -> {mark: epoch ms}
  window.__expect = null;  // {call_id, marks: {mark: text}}
  const waiters = {};
  const complete = (expect) =>
    Object.keys(expect.marks).every((mark) => mark in (window.__stamps[expect.call_id] ?? {}));
  new MutationObserver((records) => {
    const expect = window.__expect;
    if (!expect || complete(expect)) return;
    const t = performance.timeOrigin + performance.now();
    const stamps = {...(window.__stamps[expect.call_id] ?? {})};
    const missing = Object.entries(expect.marks).filter(([mark]) => !(mark in stamps));
    for (const record of records) {
      const texts = record.type === 'characterData'
        ? [record.target.data] : Array.from(record.addedNodes, (node) => node.textContent);
      for (const text of texts) {
        if (!text) continue;
        for (const [mark, part] of missing) if (!(mark in stamps) && text.includes(part)) stamps[mark] = t;
      }
    }
    if (Object.keys(stamps).length) window.__stamps[expect.call_id] = stamps;
    const waiter = waiters[expect.call_id];
    if (waiter && complete(expect)) { delete waiters[expect.call_id]; waiter(); }
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
  window.__waitSeen = (id, ms) => new Promise((resolve) => {
    const done = () => resolve(window.__stamps[id] ?? {});
    const expect = window.__expect;
    if (expect && expect.call_id === id && complete(expect)) return done();
    const timer = setTimeout(() => { delete waiters[id]; done(); }, ms);
    waiters[id] = () => { clearTimeout(timer); done(); };
  });
  return true;
}
"""
EXPECT_JS = """
([marks, callId]) => {
  window.__expect = {call_id: callId, marks: marks};
  return performance.timeOrigin + performance.now();
}
"""
STAMPED_JS = '() => Object.keys(window.__stamps)'
LIST_TITLE = 'Мои заёмщики'  # an operator's borrower list: the page is up


# --- settings -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--tabs', type=int, default=100, help='operator tabs open in Chromium')
    parser.add_argument('--calls', type=int, default=200, help='timed screen pops, one at a time')
    parser.add_argument(
        '--interval',
        type=float,
        default=0.5,
        help='seconds from one pop (name and card shown) to the next call',
    )
    parser.add_argument(
        '--back-to-back',
        type=int,
        default=200,
        help='more pops after those, each call right after the last card (reported apart)',
    )
    parser.add_argument(
        '--fresh-calls',
        type=int,
        default=50,
        help='pops into a freshly loaded page, each tab reloaded just before its call (reported apart)',
    )
    parser.add_argument(
        '--fresh-wait',
        type=float,
        default=1.0,
        help='seconds from the reloaded page connected to its call',
    )
    parser.add_argument('--burst', type=int, default=5000, help='incoming calls for the throughput run')
    parser.add_argument('--borrowers', type=int, default=2000, help='demo borrowers seeded')
    parser.add_argument('--login-concurrency', type=int, default=6, help='logins run at the same time')
    parser.add_argument('--publishers', type=int, default=4, help='publisher threads in the burst')
    parser.add_argument('--timeout', type=float, default=5.0, help='seconds to wait for one pop')
    parser.add_argument('--witnesses', type=int, default=3, help='other tabs watched for a stray pop')
    parser.add_argument(
        '--vhost',
        default='crm_bench',
        help="RabbitMQ vhost made with rabbitmqctl for the run ('' keeps the URL's own vhost)",
    )
    parser.add_argument(
        '--app-dir',
        type=Path,
        default=ROOT,
        help='run app.py from here (a patched copy, to find where time goes)',
    )
    parser.add_argument('--records', type=Path, help='write every timed pop here, one JSON object a line')
    args = parser.parse_args(argv)
    if args.tabs < 1 or args.calls < 1:
        parser.error('--tabs and --calls must be positive')
    if min(args.burst, args.back_to_back, args.fresh_calls, args.interval, args.fresh_wait) < 0:
        parser.error('--burst, --back-to-back, --fresh-calls, --interval, --fresh-wait must not be negative')
    return args


def choose_backend() -> Backend:
    database_url = os.environ.get('CRM_BENCH_DATABASE_URL') or ''
    amqp_url = os.environ.get('CRM_BENCH_AMQP_URL') or ''
    if database_url and amqp_url:
        if make_url(database_url).get_backend_name() != 'postgresql':
            raise SystemExit('CRM_BENCH_DATABASE_URL must be a postgresql+psycopg:// URL')
        return Backend(database_url, amqp_url)
    if database_url or amqp_url:
        log.warning('both CRM_BENCH_DATABASE_URL and CRM_BENCH_AMQP_URL are needed; using SQLite')
    return Backend(f'sqlite:///{SQLITE_PATH}', None)


# --- the database -------------------------------------------------------------------------------


def reset_database(backend: Backend) -> None:
    """Drop everything of the last run: the public schema on PostgreSQL, the file on SQLite."""
    if backend.amqp_url is None:
        SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ('', '-wal', '-shm', '-journal'):
            Path(f'{SQLITE_PATH}{suffix}').unlink(missing_ok=True)
        return
    create_database_if_missing(backend.database_url)
    reset_postgres_schema(backend.database_url)


@dataclass(frozen=True)
class Target:
    borrower_id: int
    name: str  # 'Фамилия Имя Отчество': the pop is there once this shows in the tab
    phone: str
    pin_line: str  # 'PIN: …': the card's heading is there once this shows
    inn: str  # under «ИНН» in the personal-data grid: the whole card is there once this shows

    def marks(self) -> dict[str, str]:
        """What the tab's observer stamps, by the names PopRecord takes them under."""
        return {'name': self.name, 'pin': self.pin_line, 'inn': self.inn}


@dataclass
class Fixture:
    extensions: list[str]
    logins: list[str]
    targets: list[Target]  # a phone held by one borrower, a full name nobody else has, an INN
    phones: list[str]  # every borrower phone, for the burst


def prepare_database(backend: Backend, borrowers: int, tabs: int) -> Fixture:
    """Wipe, migrate, seed the demo data and `tabs` bench operators; pick the borrowers to ring with."""
    from crm.db.demo import seed_demo  # Faker and the generator: only when the bench runs

    started = time.perf_counter()
    reset_database(backend)
    upgrade(backend.database_url)
    engine = make_engine(backend.database_url)
    sessions = make_sessions(engine)
    try:
        seed_demo(sessions, borrowers=borrowers, seed=SEED)
        password_hash = hash_password(PASSWORD)
        extensions = [str(FIRST_EXTENSION + i) for i in range(tabs)]
        logins = [f'bench{extension}' for extension in extensions]
        with sessions.begin() as session:
            session.add_all(
                User(
                    login=login,
                    email=None,
                    full_name=f'Оператор стенда {extension}',
                    password_hash=password_hash,
                    role=Role.OPERATOR.value,
                    active=True,
                    extension=extension,
                    failed_logins=0,
                )
                for login, extension in zip(logins, extensions, strict=True)
            )
        with sessions() as session:
            rows = session.execute(
                select(
                    Borrower.id,
                    Borrower.pin,
                    Borrower.inn,
                    Borrower.last_name,
                    Borrower.first_name,
                    Borrower.middle_name,
                )
            ).all()
            phones = session.execute(select(BorrowerPhone.borrower_id, BorrowerPhone.phone)).all()
    finally:
        engine.dispose()
    pins = {row.id: row.pin for row in rows}
    inns = {row.id: row.inn for row in rows}
    names = {
        row.id: ' '.join(p for p in (row.last_name, row.first_name, row.middle_name) if p) for row in rows
    }
    name_count: dict[str, int] = {}
    for name in names.values():
        name_count[name] = name_count.get(name, 0) + 1
    holders: dict[str, set[int]] = {}
    for borrower_id, phone in phones:
        holders.setdefault(phone, set()).add(borrower_id)
    targets: list[Target] = []
    taken: set[int] = set()
    for phone, ids in sorted(holders.items()):
        if len(ids) != 1:
            continue
        (borrower_id,) = ids
        inn = inns[borrower_id]
        if borrower_id in taken or name_count[names[borrower_id]] != 1 or not inn:
            continue
        taken.add(borrower_id)
        targets.append(Target(borrower_id, names[borrower_id], phone, f'PIN: {pins[borrower_id]}', inn))
    random.Random(SEED).shuffle(targets)
    log.info(
        'database ready in %.1f s: %d borrowers, %d bench operators, %d borrowers to ring with',
        time.perf_counter() - started,
        len(names),
        tabs,
        len(targets),
    )
    return Fixture(extensions, logins, targets, sorted(holders))


# --- RabbitMQ and publishing ---------------------------------------------------------------------


def incoming(call_id: str, phone: str, extension: str) -> dict[str, str]:
    return {'call_id': call_id, 'from': phone, 'to_extension': extension, 'at': datetime.now(UTC).isoformat()}


# --- browser tabs -------------------------------------------------------------------------------


@dataclass
class Tab:
    login: str
    extension: str
    page: Any
    context: Any


async def open_tabs(browser: Any, app: App, fixture: Fixture, concurrency: int) -> list[Tab]:
    """Log every bench operator in, in a context of their own, a few at a time."""
    gate = asyncio.Semaphore(concurrency)
    done = itertools.count(1)

    async def one(login: str, extension: str) -> Tab:
        async with gate:
            for attempt in range(1, 4):
                context = await browser.new_context(viewport={'width': 1440, 'height': 900}, locale='ru-RU')
                try:
                    page = await log_in(context, app, login)
                    break
                except Exception as error:
                    await context.close()  # a fresh context next time: no half-made session
                    if attempt == 3:
                        raise
                    log.warning('login of %s failed (%s); again', login, str(error).splitlines()[0])
            count = next(done)
            if count % 10 == 0 or count == len(fixture.logins):
                log.info('%d/%d tabs logged in', count, len(fixture.logins))
            return Tab(login, extension, page, context)

    return list(
        await asyncio.gather(
            *(one(lg, ext) for lg, ext in zip(fixture.logins, fixture.extensions, strict=True))
        )
    )


async def log_in(context: Any, app: App, login: str) -> Any:
    """Log in through the form, wait for «Мои заёмщики» on a connected page, install the observer."""
    page = await context.new_page()
    await sign_in(page, app, login, PASSWORD)
    await page.get_by_text(LIST_TITLE).first.wait_for(timeout=60_000)
    await page.wait_for_function(HANDSHAKE_JS, timeout=60_000)
    await page.evaluate(OBSERVER_JS)
    return page


async def reload_tab(tab: Tab, settle_s: float) -> float:
    """Load the borrower list anew in the tab (a new NiceGUI client), wait for its list and websocket,
    install the observer in the new document, then let it settle ``settle_s``; returns the load in ms.

    The list, not the page the tab is on (after a pop, the last caller's card): a document that has
    drawn no card yet is the case to time.
    """
    started = time.perf_counter()
    await tab.page.goto(urljoin(tab.page.url, '/'), wait_until='domcontentloaded')
    await tab.page.get_by_text(LIST_TITLE).first.wait_for(timeout=60_000)
    await tab.page.wait_for_function(HANDSHAKE_JS, timeout=60_000)
    loaded_ms = (time.perf_counter() - started) * 1000
    await tab.page.evaluate(OBSERVER_JS)
    await asyncio.sleep(settle_s)
    return loaded_ms


# --- the timed pops -----------------------------------------------------------------------------


@dataclass
class PopRecord:
    call_id: str
    tab: int
    target: Target
    published_ms: float
    seen_ms: float | None  # the full name in the tab
    pin_ms: float | None  # the card's 'PIN: …' line in the tab
    card_ms: float | None  # the INN in the tab: the whole card
    first_in_tab: bool  # the first pop into this document

    @property
    def pop_latency(self) -> float | None:
        return None if self.seen_ms is None else self.seen_ms - self.published_ms

    @property
    def pin_latency(self) -> float | None:
        return None if self.pin_ms is None else self.pin_ms - self.published_ms

    @property
    def card_latency(self) -> float | None:
        return None if self.card_ms is None else self.card_ms - self.published_ms


@dataclass
class PopRun:
    name: str  # 'paced', 'fresh' or 'back_to_back'
    records: list[PopRecord] = field(default_factory=list)
    clock_offsets_ms: list[float] = field(default_factory=list)
    stray: list[str] = field(default_factory=list)
    reload_ms: list[float] = field(default_factory=list)  # page load to websocket up, fresh run only


async def run_pops(
    name: str,
    tabs: list[Tab],
    publisher: Publisher,
    targets: Sequence[Target],
    interval: float,
    args: argparse.Namespace,
    fresh_wait: float | None = None,
) -> PopRun:
    """One call at a time: arm the target tab (and a few witnesses), publish, wait for the stamps
    (name, PIN line, INN), then ``interval`` seconds before the next call. With ``fresh_wait`` the
    target tab's page is loaded anew before each call, ``fresh_wait`` seconds before it."""
    rng = random.Random(SEED)
    run = PopRun(name)
    popped: set[int] = set()
    stamped: dict[int, set[str]] = {index: set() for index in range(len(tabs))}  # before a reload
    witness_checks = 0
    for number, target in enumerate(targets):
        index = number % len(tabs)
        tab = tabs[index]
        if fresh_wait is not None:
            stamped[index] |= set(await tab.page.evaluate(STAMPED_JS))
            run.reload_ms.append(await reload_tab(tab, fresh_wait))
            popped.discard(index)
        call_id = f'bench-pop-{uuid.uuid4()}'
        others = [i for i in range(len(tabs)) if i != index]
        witnesses = rng.sample(others, min(args.witnesses, len(others)))
        witness_checks += len(witnesses)
        for witness in witnesses:
            await tabs[witness].page.evaluate(EXPECT_JS, [target.marks(), call_id])
        before = time.time() * 1000
        page_now = await tab.page.evaluate(EXPECT_JS, [target.marks(), call_id])
        after = time.time() * 1000
        run.clock_offsets_ms.append(page_now - (before + after) / 2)
        published = publisher.send(INCOMING, incoming(call_id, target.phone, tab.extension))
        stamps = await tab.page.evaluate(
            '([id, ms]) => window.__waitSeen(id, ms)', [call_id, args.timeout * 1000]
        )
        record = PopRecord(
            call_id,
            index,
            target,
            published,
            stamps.get('name'),
            stamps.get('pin'),
            stamps.get('inn'),
            index not in popped,
        )
        run.records.append(record)
        popped.add(index)
        warn_missing(record, tab, args.timeout)
        if (number + 1) % 25 == 0:
            log_progress(run, len(targets))
        await asyncio.sleep(interval)
    await asyncio.sleep(0.5)  # a stray pop may come a little after the right one
    owner = {r.call_id: r.tab for r in run.records}
    for index, tab in enumerate(tabs):
        seen = stamped[index] | set(await tab.page.evaluate(STAMPED_JS))
        run.stray += [call_id for call_id in seen if owner.get(call_id, index) != index]
    if run.stray:
        log.error('%d pops showed up in a tab of another extension', len(run.stray))
    log.info('%s: %d witness checks, %d stray pops', name, witness_checks, len(run.stray))
    return run


def warn_missing(record: PopRecord, tab: Tab, timeout: float) -> None:
    if record.seen_ms is None:
        log.warning('call %s to %s: no pop within %.1f s', record.call_id, tab.extension, timeout)
    elif record.card_ms is None or record.pin_ms is None:
        log.warning(
            'call %s to %s: name shown, card incomplete within %.1f s', record.call_id, tab.extension, timeout
        )


def log_progress(run: PopRun, total: int) -> None:
    pops = known(r.pop_latency for r in run.records)
    cards = known(r.card_latency for r in run.records)
    log.info(
        '%s: %d/%d pops, median so far %.1f ms name, %.1f ms card',
        run.name,
        len(run.records),
        total,
        statistics.median(pops) if pops else float('nan'),
        statistics.median(cards) if cards else float('nan'),
    )


def write_records(path: Path, runs: Sequence[PopRun], tabs: list[Tab]) -> None:
    with path.open('w') as output:
        for run in runs:
            for r in run.records:
                row = {
                    'run': run.name,
                    'call_id': r.call_id,
                    'extension': tabs[r.tab].extension,
                    'borrower_id': r.target.borrower_id,
                    'published_ms': r.published_ms,
                    'seen_ms': r.seen_ms,
                    'pin_ms': r.pin_ms,
                    'card_ms': r.card_ms,
                    'first_in_tab': r.first_in_tab,
                }
                output.write(json.dumps(row) + '\n')


def stages(engine: Engine, records: list[PopRecord]) -> dict[str, dict[str, float | None]]:
    """Where the time goes, from the app's own timestamps (same machine clock): the event applied
    (inbound_events.received_at) and the card read for the tab (audit card.view)."""
    by_call = {r.call_id: r for r in records if r.card_ms is not None}
    with engine.connect() as connection:
        applied = dict(
            connection.execute(
                select(InboundEvent.call_id, InboundEvent.received_at).where(
                    InboundEvent.call_id.in_(list(by_call))
                )
            ).all()
        )
        viewed: dict[int, datetime] = {}
        borrowers = [r.target.borrower_id for r in by_call.values()]
        for borrower_id, at in connection.execute(
            select(AuditEntry.borrower_id, func.min(AuditEntry.at))
            .where(AuditEntry.action == 'card.view', AuditEntry.borrower_id.in_(borrowers))
            .group_by(AuditEntry.borrower_id)
        ).all():
            if borrower_id is not None:
                viewed[borrower_id] = at
    parts: dict[str, list[float]] = {
        'publish_to_applied': [],
        'applied_to_card_read': [],
        'card_read_to_card_in_dom': [],
    }
    for call_id, record in by_call.items():
        if call_id not in applied or record.target.borrower_id not in viewed:
            continue
        applied_ms = to_ms(applied[call_id])
        viewed_ms = to_ms(viewed[record.target.borrower_id])
        assert record.card_ms is not None
        parts['publish_to_applied'].append(applied_ms - record.published_ms)
        parts['applied_to_card_read'].append(viewed_ms - applied_ms)
        parts['card_read_to_card_in_dom'].append(record.card_ms - viewed_ms)
    return {name: summary(values, ('p50', 'p99', 'mean')) for name, values in parts.items() if values}


def to_ms(moment: datetime) -> float:
    """Epoch milliseconds of a database timestamp (naive ones are UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() * 1000


# --- throughput ---------------------------------------------------------------------------------


@dataclass
class BurstResult:
    events: int
    events_per_s: float
    publish_per_s: float
    seconds: float
    committed: int


def count_calls(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(Call)) or 0


def run_burst(
    engine: Engine, amqp_url: str | None, app: App, fixture: Fixture, args: argparse.Namespace
) -> BurstResult:
    """Publish --burst incoming calls from a few threads at once, then wait for every commit."""
    total = args.burst
    base = count_calls(engine)
    rng = random.Random(SEED + 1)
    bodies = [
        incoming(f'bench-burst-{uuid.uuid4()}', rng.choice(fixture.phones), BURST_EXTENSIONS[i % 5])
        for i in range(total)
    ]
    threads = max(1, args.publishers)
    slices = [bodies[i::threads] for i in range(threads)]
    finished: list[float] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads + 1)

    def rabbit(chunk: list[dict[str, str]]) -> None:

        assert amqp_url is not None
        publish_burst(amqp_url, INCOMING, list(chunk), barrier)
        finished.append(time.time())

    def http(chunk: list[dict[str, str]]) -> None:
        with httpx.Client(
            base_url=app.url, headers={'Authorization': f'Bearer {app.token}'}, timeout=60
        ) as client:
            payloads = [json.dumps({'type': INCOMING, **body}).encode() for body in chunk]
            headers = {'Content-Type': 'application/json'}
            barrier.wait()
            for payload in payloads:
                response = client.post('/api/v1/events', content=payload, headers=headers)
                if response.status_code != 202:
                    raise RuntimeError(f'POST /api/v1/events: {response.status_code} {response.text[:300]}')
        finished.append(time.time())

    def guarded(chunk: list[dict[str, str]]) -> None:
        try:
            (rabbit if amqp_url else http)(chunk)
        except BaseException as error:
            errors.append(error)
            barrier.abort()

    workers = [threading.Thread(target=guarded, args=(chunk,), daemon=True) for chunk in slices]
    for worker in workers:
        worker.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        raise RuntimeError(f'a publisher failed: {errors[0]!r}' if errors else 'publishers failed') from None
    started = time.time()
    log.info('burst: %d incoming calls from %d publishers', total, threads)
    committed, last_change, last_count = base, time.monotonic(), base
    while committed < base + total:
        if errors:
            raise RuntimeError(f'a publisher failed: {errors[0]!r}') from errors[0]
        time.sleep(0.01)
        committed = count_calls(engine)
        if committed != last_count:
            last_change, last_count = time.monotonic(), committed
        elif time.monotonic() - last_change > 30:
            log.error('burst: no progress for 30 s at %d/%d committed', committed - base, total)
            break
    done = time.time()
    for worker in workers:
        worker.join(60)
    if errors:
        raise RuntimeError(f'a publisher failed: {errors[0]!r}') from errors[0]
    published_s = max(finished) - started if finished else float('nan')
    count = committed - base
    seconds = done - started
    log.info(
        'burst: %d committed in %.2f s (%.0f/s); publishing took %.2f s (%.0f/s)',
        count,
        seconds,
        count / seconds,
        published_s,
        total / published_s,
    )
    return BurstResult(total, count / seconds, total / published_s, seconds, count)


# --- main ---------------------------------------------------------------------------------------


async def measure(
    args: argparse.Namespace, backend: Backend, amqp_url: str | None, app: App, fixture: Fixture
) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    engine = make_engine(backend.database_url)
    result: dict[str, Any] = {'load_at_start': round(os.getloadavg()[0], 2)}
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                started = time.perf_counter()
                try:
                    tabs = await open_tabs(browser, app, fixture, args.login_concurrency)
                except Exception:
                    app.check_alive()
                    raise
                log.info('%d tabs ready in %.1f s', len(tabs), time.perf_counter() - started)
                if amqp_url:
                    consumers = queue_consumers(amqp_url)
                    if consumers != 1:
                        log.warning('%s has %d consumers: not only this app', EVENTS_QUEUE, consumers)
                await asyncio.sleep(1.0)  # let the tabs settle after their logins
                publisher = Publisher(amqp_url, app)
                try:
                    pops, fresh, rushed = await run_all_pops(tabs, publisher, fixture.targets, args)
                finally:
                    publisher.close()
                result |= {'pops': pops, 'fresh': fresh, 'back_to_back': rushed}
                if args.records:
                    runs = [run for run in (pops, fresh, rushed) if run is not None]
                    write_records(args.records, runs, tabs)
                result['stages'] = stages(engine, pops.records)
                result['burst'] = run_burst(engine, amqp_url, app, fixture, args) if args.burst else None
            finally:
                await browser.close()
    finally:
        engine.dispose()
    return result


async def run_all_pops(
    tabs: list[Tab], publisher: Publisher, targets: Sequence[Target], args: argparse.Namespace
) -> tuple[PopRun, PopRun | None, PopRun | None]:
    """The three timed runs, each with borrowers of its own: long-lived tabs paced by --interval,
    then a freshly loaded page for every call, then back to back."""
    wanted = args.calls + args.fresh_calls + args.back_to_back
    if len(targets) < wanted:
        raise RuntimeError(f'only {len(targets)} borrowers have a phone of their own, {wanted} wanted')
    fresh_end = args.calls + args.fresh_calls
    log.info('%d calls, %.2f s after each pop', args.calls, args.interval)
    pops = await run_pops('paced', tabs, publisher, targets[: args.calls], args.interval, args)
    fresh = rushed = None
    if args.fresh_calls:
        log.info('%d calls, each into a page loaded %.2f s before', args.fresh_calls, args.fresh_wait)
        fresh_targets = targets[args.calls : fresh_end]
        fresh = await run_pops('fresh', tabs, publisher, fresh_targets, args.interval, args, args.fresh_wait)
    if args.back_to_back:
        log.info('%d calls back to back', args.back_to_back)
        rushed = await run_pops('back_to_back', tabs, publisher, targets[fresh_end:wanted], 0.0, args)
    return pops, fresh, rushed


def run_report(run: PopRun | None) -> dict[str, Any] | None:
    """A run reported apart (fresh page, back to back): name and whole card, and how often missing."""
    if run is None:
        return None
    reported: dict[str, Any] = {
        'calls': len(run.records),
        'timeouts': sum(r.seen_ms is None for r in run.records),
        'card_timeouts': sum(r.card_ms is None for r in run.records),
        'pop_ms': summary(known(r.pop_latency for r in run.records)),
        'card_ms': summary(known(r.card_latency for r in run.records)),
        'full_card_ms': summary(known(r.pin_latency for r in run.records)),
        'stray_pops': len(run.stray),
    }
    if run.reload_ms:
        reported['reload_ms'] = summary(run.reload_ms, ('p50', 'p99', 'max'))
    return reported


def within(summarised: dict[str, float | None], timeouts: int, limit: float) -> bool:
    """A p99 target met: nothing timed out and the p99 is at most ``limit`` ms."""
    p99 = summarised['p99']
    return timeouts == 0 and p99 is not None and p99 <= limit


def report(args: argparse.Namespace, backend: Backend, measured: dict[str, Any]) -> dict[str, Any]:
    pops: PopRun = measured['pops']
    fresh, rushed = run_report(measured['fresh']), run_report(measured['back_to_back'])
    first = known(r.pop_latency for r in pops.records if r.first_in_tab)
    again = known(r.pop_latency for r in pops.records if not r.first_in_tab)
    burst: BurstResult | None = measured['burst']
    timeouts = sum(r.seen_ms is None for r in pops.records)
    card_timeouts = sum(r.card_ms is None for r in pops.records)
    pop_ms = summary(known(r.pop_latency for r in pops.records))
    card_ms = summary(known(r.card_latency for r in pops.records))
    consumer = {
        'events': burst.committed if burst else 0,
        'events_per_s': round(burst.events_per_s, 1) if burst else None,
        'publish_per_s': round(burst.publish_per_s, 1) if burst else None,
        'seconds': round(burst.seconds, 3) if burst else None,
    }
    offsets = [abs(o) for o in pops.clock_offsets_ms]
    stray = sum(len(run.stray) for run in (pops, measured['fresh'], measured['back_to_back']) if run)
    return {
        'backend': backend.name,
        'tabs': args.tabs,
        'calls': len(pops.records),
        'interval_s': args.interval,
        'timeouts': timeouts,
        'card_timeouts': card_timeouts,
        'pop_ms': pop_ms,
        'card_ms': card_ms,
        'consumer': consumer,
        'targets': TARGETS,
        'met': {
            'pop_p99_ms': within(pop_ms, timeouts, TARGETS['pop_p99_ms']),
            'card_p99_ms': within(card_ms, card_timeouts, TARGETS['card_p99_ms']),
            'fresh_card_p99_ms': fresh is not None
            and within(fresh['card_ms'], fresh['card_timeouts'], TARGETS['fresh_card_p99_ms']),
            'events_per_s': burst is not None
            and burst.committed == burst.events
            and burst.events_per_s >= TARGETS['events_per_s'],
            'no_stray_pops': stray == 0,
        },
        'detail': {
            'full_card_ms': summary(known(r.pin_latency for r in pops.records)),
            'pin_timeouts': sum(r.pin_ms is None for r in pops.records),
            'pop_ms_first_in_tab': summary(first),
            'pop_ms_repeat_in_tab': summary(again),
            'fresh': fresh,
            'fresh_wait_s': args.fresh_wait,
            'back_to_back': rushed,
            'stages_ms': measured['stages'],
            'stray_pops': len(pops.stray),
            'clock_offset_ms': {
                'median_abs': round(statistics.median(offsets), 3),
                'max_abs': round(max(offsets), 3),
            },
        },
        'machine': machine(measured['load_at_start']),
    }


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format='%(asctime)s %(levelname)s %(name)s: %(message)s'
    )
    for noisy in ('pika', 'httpx', 'alembic'):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = parse_args(argv)
    backend = choose_backend()
    log.info('backend %s', backend.name)
    fixture = prepare_database(backend, args.borrowers, args.tabs)
    amqp_url = prepare_vhost(backend.amqp_url, args.vhost) if backend.amqp_url else None
    app = start_app(backend, amqp_url, APP_VAR_DIR, args.app_dir)
    try:
        measured = asyncio.run(measure(args, backend, amqp_url, app, fixture))
    finally:
        app.stop()
    print(json.dumps(report(args, backend, measured), ensure_ascii=False))


if __name__ == '__main__':
    main()
