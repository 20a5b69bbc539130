"""«Мониторинг» under load: a state change reaching every open dashboard, and the dashboard's database cost
with 1 and with 20 viewers (a companion of screen_pop.py; the shared parts are in live_app.py).

PostgreSQL + RabbitMQ when CRM_BENCH_DATABASE_URL and CRM_BENCH_AMQP_URL are set (the database
``<its name>_dashboard``, tests.harness.bench_database_url), otherwise a SQLite file under var/bench/ and the
in-process bus, with events POSTed to /api/v1/events. The database is wiped, migrated and seeded with the
demo data and `--operators` bench operators (extensions of their own, in groups of 20, all led by one bench
supervisor); the app runs as a subprocess on a free loopback port and `--dashboards` browser contexts of one
headless Chromium open /monitoring as that supervisor (every operator's row in each).

The operators are simulated as the PBX would report them: at a steady `--rate` of state changes a second,
round-robin over the operators, each operator's calls go telephony.call.incoming (to their extension, from a
real borrower's phone: «Входящий»), .answered («Разговор»), .ended («Постобработка»), and so on.

1. Latency: for each of the first `--changes` changes and each dashboard, a MutationObserver in the page
   stamps (epoch ms) when the operator's state cell (data-testid monitoring-state-{id}) shows the new
   state; latency = that stamp - the wall clock taken just before basic_publish (or the HTTP POST).
2. Statements: the app's ``crm_db_statements_total`` (GET /metrics) over `--window-s` seconds with every
   dashboard open, then with one (the others closed, and gone from ``crm_dashboard_viewers``), under the
   same churn; per minute, and the ratio. The churn's own statements are in both: the difference is what
   19 more viewers cost.

Logs go to stderr; stdout gets exactly one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import re
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for crm and tests.harness

from live_app import (
    HANDSHAKE_JS,
    App,
    Backend,
    Publisher,
    percentile,
    prepare_vhost,
    sign_in,
    start_app,
    summary,
)

from crm.db.engine import make_engine, make_sessions
from crm.db.migrate import upgrade
from crm.db.models import BorrowerPhone, User, UserGroup
from crm.db.statement_count import ORIGINS
from crm.domain import Role
from crm.domain.passwords import hash_password
from tests.harness import CHROMIUM, CHROMIUM_ARGS, bench_database_url, machine

log = logging.getLogger('bench.dashboard')

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / 'var' / 'bench'
SQLITE_PATH = BENCH_DIR / 'dashboard.sqlite3'
APP_VAR_DIR = BENCH_DIR / 'dashboard_app'
PASSWORD = 'bench-dashboard'
SUPERVISOR = 'benchlead'
FIRST_EXTENSION = 3001
GROUP_SIZE = 20
SEED = 20261126
TARGETS = {'latency_p95_ms': 1000, 'statements_20_over_1_max': 1.10}
# The steps of a call as the PBX reports them, and the state each one puts the operator in.
STEPS = (
    ('telephony.call.incoming', 'Входящий'),
    ('telephony.call.answered', 'Разговор'),
    ('telephony.call.ended', 'Постобработка'),
)
# Neither time-out may move an operator while the bench runs: only the calls do.
APP_SETTINGS = {'CRM_WRAP_UP_TIMEOUT_S': '36000', 'CRM_OFFLINE_AFTER_S': '36000'}
STATE_PREFIX = 'monitoring-state-'
# In every document of a dashboard's context (an init script: a page NiceGUI reloads after a lost
# connection keeps it): every change of a state cell's text goes to Python at once as
# (user id, text, epoch ms), so nothing is lost with the document. Only what was added or changed is
# looked at, so a tick costs little. A new document says so (reloads are reported).
OBSERVER_JS = """
(() => {
  const prefix = 'monitoring-state-';  // STATE_PREFIX
  const cellOf = (node) => {
    const element = node.nodeType === 1 ? node : node.parentElement;
    return element ? element.closest(`[data-testid^="${prefix}"]`) : null;
  };
  const watch = () => {
    window.__crmDocument(location.pathname);
    new MutationObserver((records) => {
      const t = performance.timeOrigin + performance.now();
      const seen = new Set();
      for (const record of records) {
        const cell = cellOf(record.target);
        if (!cell || seen.has(cell)) continue;
        seen.add(cell);
        window.__crmStamp(cell.dataset.testid.slice(prefix.length), cell.textContent.trim(), t);
      }
    }).observe(document.body, {childList: true, subtree: true, characterData: true});
  };
  if (document.body) watch(); else document.addEventListener('DOMContentLoaded', watch);
})();
"""
CLOSE_S = 30.0
NOW_JS = '() => performance.timeOrigin + performance.now()'


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--operators', type=int, default=100, help='simulated operators (rows on a dashboard)'
    )
    parser.add_argument('--dashboards', type=int, default=20, help='dashboards open in Chromium')
    parser.add_argument('--changes', type=int, default=300, help='state changes timed in every dashboard')
    parser.add_argument('--rate', type=float, default=2.0, help='state changes a second (all operators)')
    parser.add_argument('--window-s', type=float, default=60.0, help='seconds each statement count runs')
    parser.add_argument('--timeout', type=float, default=10.0, help='seconds a change may take to show')
    parser.add_argument('--borrowers', type=int, default=2000, help='demo borrowers seeded')
    parser.add_argument('--login-concurrency', type=int, default=4, help='logins run at the same time')
    parser.add_argument(
        '--vhost',
        default='crm_bench_dashboard',
        help="RabbitMQ vhost made with rabbitmqctl for the run ('' keeps the URL's own vhost)",
    )
    args = parser.parse_args(argv)
    if min(args.operators, args.dashboards, args.changes) < 1 or args.rate <= 0 or args.window_s <= 0:
        parser.error('--operators, --dashboards, --changes, --rate and --window-s must be positive')
    return args


def choose_backend() -> Backend:
    """The bench's own database (tests.harness), RabbitMQ only with PostgreSQL."""
    amqp_url = os.environ.get('CRM_BENCH_AMQP_URL') or None
    if bool(os.environ.get('CRM_BENCH_DATABASE_URL')) != bool(amqp_url):
        log.warning('both CRM_BENCH_DATABASE_URL and CRM_BENCH_AMQP_URL are needed; using SQLite')
        amqp_url = None
    if amqp_url is None:
        os.environ.pop('CRM_BENCH_DATABASE_URL', None)  # bench_database_url: the SQLite file then
    return Backend(bench_database_url('dashboard', SQLITE_PATH), amqp_url)


# --- the database -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operator:
    user_id: int
    extension: str


def prepare_database(backend: Backend, borrowers: int, operators: int) -> tuple[list[Operator], list[str]]:
    """Migrate, seed the demo data, the bench supervisor and the operators in their groups; the operators
    and the borrowers' phones to ring from."""
    from crm.db.demo import seed_demo  # Faker and the generator: only when the bench runs

    started = time.perf_counter()
    upgrade(backend.database_url)
    engine = make_engine(backend.database_url)
    sessions = make_sessions(engine)
    try:
        seed_demo(sessions, borrowers=borrowers, seed=SEED)
        password_hash = hash_password(PASSWORD)

        def user(login: str, name: str, role: Role, extension: str | None = None) -> User:
            return User(
                login=login,
                email=None,
                full_name=name,
                password_hash=password_hash,
                role=role.value,
                active=True,
                extension=extension,
                failed_logins=0,
            )

        with sessions.begin() as session:
            lead = user(SUPERVISOR, 'Руководитель стенда', Role.SUPERVISOR)
            session.add(lead)
            session.flush()
            groups = [
                UserGroup(name=f'Стенд {number + 1}', supervisor_id=lead.id)
                for number in range((operators + GROUP_SIZE - 1) // GROUP_SIZE)
            ]
            session.add_all(groups)
            session.flush()
            rows = []
            for index in range(operators):
                extension = str(FIRST_EXTENSION + index)
                row = user(f'benchop{extension}', f'Оператор стенда {extension}', Role.OPERATOR, extension)
                row.group_id = groups[index // GROUP_SIZE].id
                rows.append(row)
            session.add_all(rows)
            session.flush()
            chosen = [Operator(row.id, row.extension or '') for row in rows]
        with sessions() as session:
            phones = sorted(set(session.scalars(select(BorrowerPhone.phone))))
    finally:
        engine.dispose()
    log.info(
        'database ready in %.1f s: %d operators in %d groups, %d phones',
        time.perf_counter() - started,
        operators,
        len(groups),
        len(phones),
    )
    return chosen, phones


# --- the simulated operators --------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    number: int
    user_id: int
    state: str  # the label the dashboard shows once the change is there
    published_ms: float


@dataclass
class Churn:
    """State changes at a steady rate, round-robin over the operators, each through its call's steps."""

    publisher: Publisher
    operators: list[Operator]
    phones: list[str]
    rate: float
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    changes: list[Change] = field(default_factory=list)
    late: list[float] = field(default_factory=list)  # seconds a publish started after its slot

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set, one change every 1/rate s (one thread: the publisher's own)."""
        rng = random.Random(SEED)
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix='pbx') as pbx:
            number = 0
            while not stop.is_set():
                slot = started + number / self.rate
                delay = slot - time.monotonic()
                if delay > 0:
                    try:
                        await asyncio.wait_for(stop.wait(), delay)
                        break
                    except TimeoutError:
                        pass
                else:
                    self.late.append(-delay)
                operator = self.operators[number % len(self.operators)]
                cycle, step = divmod(number // len(self.operators), len(STEPS))
                event_type, state = STEPS[step]
                body = self.body(
                    step, f'bench-dash-{self.run_id}-{operator.extension}-{cycle}', operator, rng
                )
                published = await loop.run_in_executor(pbx, self.publisher.send, event_type, body)
                self.changes.append(Change(number, operator.user_id, state, published))
                number += 1
                if number % 100 == 0:
                    log.info('%d state changes published', number)

    def body(self, step: int, call_id: str, operator: Operator, rng: random.Random) -> dict[str, Any]:
        at = datetime.now(UTC).isoformat()
        if step == 0:
            return {
                'call_id': call_id,
                'from': rng.choice(self.phones),
                'to_extension': operator.extension,
                'at': at,
            }
        if step == 1:
            return {'call_id': call_id, 'at': at}
        return {'call_id': call_id, 'at': at, 'duration_s': int(len(self.operators) / self.rate)}


# --- the dashboards -----------------------------------------------------------------------------


@dataclass
class Dashboard:
    page: Any
    context: Any
    clock_offset_ms: float
    stamps: list[list[Any]]  # [user id, text, epoch ms], every change of a state cell
    documents: list[str]  # the path of every document the context loaded


async def watched_context(browser: Any) -> tuple[Any, list[list[Any]], list[str]]:
    """A browser context whose every document reports its state cells' changes (OBSERVER_JS)."""
    context = await browser.new_context(viewport={'width': 1600, 'height': 1000}, locale='ru-RU')
    stamps: list[list[Any]] = []
    documents: list[str] = []
    await context.expose_function('__crmStamp', lambda *stamp: stamps.append(list(stamp)))
    await context.expose_function('__crmDocument', lambda path: documents.append(path))
    await context.add_init_script(OBSERVER_JS)
    return context, stamps, documents


async def open_dashboards(
    browser: Any, app: App, count: int, last_user_id: int, concurrency: int
) -> list[Dashboard]:
    """``count`` contexts, each logged in as the bench supervisor, on /monitoring with every row drawn."""
    gate = asyncio.Semaphore(concurrency)
    done = [0]

    async def one() -> Dashboard:
        async with gate:
            for attempt in range(1, 4):
                context, stamps, documents = await watched_context(browser)
                try:
                    page = await context.new_page()
                    await sign_in(page, app, SUPERVISOR, PASSWORD)
                    await page.wait_for_url(lambda url: '/login' not in url, timeout=60_000)
                    await page.goto(app.url + '/monitoring', wait_until='domcontentloaded')
                    await page.get_by_test_id(f'{STATE_PREFIX}{last_user_id}').wait_for(timeout=60_000)
                    await page.wait_for_function(HANDSHAKE_JS, timeout=60_000)
                    before = time.time() * 1000
                    page_now = await page.evaluate(NOW_JS)
                    offset = page_now - (before + time.time() * 1000) / 2
                    break
                except Exception as error:
                    await context.close()
                    if attempt == 3:
                        raise
                    log.warning('a dashboard did not open (%s); again', str(error).splitlines()[0])
            done[0] += 1
            if done[0] % 5 == 0 or done[0] == count:
                log.info('%d/%d dashboards open', done[0], count)
            return Dashboard(page, context, offset, stamps, documents)

    return list(await asyncio.gather(*(one() for _ in range(count))))


def latencies(
    changes: Sequence[Change], logs: Sequence[list[list[Any]]], timeout_s: float
) -> tuple[list[float], list[int], list[list[float]]]:
    """For every (change, dashboard): the first time the dashboard showed the change's state for that
    operator at or after its publish (within ``timeout_s``). Returns every latency, how many dashboards
    each change reached, and the latencies per dashboard."""
    # the browser's and Python's wall clocks, read a moment apart; the same state of one operator comes
    # back only after len(STEPS) * operators / rate seconds
    tolerance_ms = 100.0
    shown: list[dict[tuple[str, str], list[float]]] = []
    for entries in logs:
        index: dict[tuple[str, str], list[float]] = {}
        for user_id, text, at in entries:
            index.setdefault((str(user_id), str(text)), []).append(float(at))
        shown.append(index)
    every: list[float] = []
    reached: list[int] = []
    per_dashboard: list[list[float]] = [[] for _ in logs]
    for change in changes:
        count = 0
        key = (str(change.user_id), change.state)
        for number, index in enumerate(shown):
            first = next(
                (
                    at
                    for at in index.get(key, ())
                    if change.published_ms - tolerance_ms <= at <= change.published_ms + timeout_s * 1000
                ),
                None,
            )
            if first is not None:
                latency = max(0.0, first - change.published_ms)
                every.append(latency)
                per_dashboard[number].append(latency)
                count += 1
        reached.append(count)
    return every, reached, per_dashboard


# --- the statements -----------------------------------------------------------------------------


def scrape(app: App) -> dict[str, float]:
    response = httpx.get(app.url + '/metrics', headers={'Authorization': f'Bearer {app.token}'}, timeout=30)
    response.raise_for_status()
    return {
        match.group(1): float(match.group(2))
        for match in re.finditer(r'^(\w+) (\S+)$', response.text, re.MULTILINE)
    }


async def wait_viewers(app: App, wanted: int, timeout_s: float = 60.0) -> None:
    """Until ``crm_dashboard_viewers`` is ``wanted`` (a closed page leaves after the reconnect time-out;
    a page reloaded after a lost connection is counted again once it is back), at most ``timeout_s``:
    the window then runs anyway and reports the viewers it had."""
    deadline = time.monotonic() + timeout_s
    while True:
        viewers = (await asyncio.to_thread(scrape, app))['crm_dashboard_viewers']
        if viewers == wanted:
            return
        if time.monotonic() > deadline:
            log.warning('crm_dashboard_viewers is %d, not %d, after %.0f s', viewers, wanted, timeout_s)
            return
        await asyncio.sleep(0.5)


async def statement_window(app: App, churn: Churn, viewers: int, seconds: float) -> dict[str, Any]:
    """The app's statements, ticks and published changes over ``seconds`` with ``viewers`` dashboards."""
    await wait_viewers(app, viewers)
    before, changes_before, started = (
        await asyncio.to_thread(scrape, app),
        len(churn.changes),
        time.monotonic(),
    )
    await asyncio.sleep(seconds)
    after, changes_after, ended = await asyncio.to_thread(scrape, app), len(churn.changes), time.monotonic()
    minutes = (ended - started) / 60
    statements = after['crm_db_statements_total'] - before['crm_db_statements_total']
    ticks = after['crm_dashboard_ticks_total'] - before['crm_dashboard_ticks_total']
    measured = {
        'viewers': [int(before['crm_dashboard_viewers']), int(after['crm_dashboard_viewers'])],
        'seconds': round(ended - started, 2),
        'statements': int(statements),
        'statements_per_min': round(statements / minutes, 1),
        'ticks_per_min': round(ticks / minutes, 1),
        'changes_published': changes_after - changes_before,
        'ui_clients': int(after.get('crm_ui_clients', -1)),
        'statements_per_min_by_origin': {
            origin: round((after[name] - before[name]) / minutes, 1)
            for origin in ORIGINS
            if (name := f'crm_db_statements_{origin}_total') in after
        },
    }
    log.info('with %d dashboard(s): %s', viewers, measured)
    return measured


# --- main ---------------------------------------------------------------------------------------


async def measure(
    args: argparse.Namespace, app: App, amqp_url: str | None, operators: list[Operator], phones: list[str]
) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    result: dict[str, Any] = {'load_at_start': round(os.getloadavg()[0], 2)}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            started = time.perf_counter()
            dashboards = await open_dashboards(
                browser, app, args.dashboards, operators[-1].user_id, args.login_concurrency
            )
            result['open_s'] = round(time.perf_counter() - started, 1)
            await asyncio.sleep(2.0)  # let the pages settle after their logins
            publisher = Publisher(amqp_url, app)
            stop = asyncio.Event()
            churn = Churn(publisher, operators, phones, args.rate)
            churning = asyncio.create_task(churn.run(stop))
            try:
                log.info('%d state changes at %.1f a second', args.changes, args.rate)
                while len(churn.changes) < args.changes:
                    if churning.done():
                        churning.result()
                    await asyncio.sleep(0.2)
                timed = churn.changes[: args.changes]
                windows = {'viewers_all': await statement_window(app, churn, args.dashboards, args.window_s)}
                waited = time.time() - timed[-1].published_ms / 1000
                await asyncio.sleep(max(0.0, args.timeout - waited))  # the last timed change had its time
                logs = [list(d.stamps) for d in dashboards]
                monitoring_loads = [d.documents.count('/monitoring') for d in dashboards]
                result['reloads'] = sum(max(0, n - 1) for n in monitoring_loads)
                result['latency'] = latencies(timed, logs, args.timeout)
                log.info('latency with %d: %s; reloads %d', len(dashboards), summary(result['latency'][0]),
                         result['reloads'])  # fmt: skip
                for number, dashboard in enumerate(dashboards[1:], 2):
                    try:  # a context whose page is swamped has been seen to never finish closing
                        await asyncio.wait_for(dashboard.context.close(), CLOSE_S)
                    except TimeoutError:
                        log.warning(
                            'dashboard %d did not close in %.0f s; the next window says', number, CLOSE_S
                        )
                windows['viewers_1'] = await statement_window(app, churn, 1, args.window_s)
                result['windows'] = windows
            finally:
                stop.set()
                await churning
                publisher.close()
            result['publish_late_s'] = max(churn.late, default=0.0)
            result['clock_offsets_ms'] = [d.clock_offset_ms for d in dashboards]
        finally:
            await browser.close()
    return result


def _without_events(window: dict[str, Any]) -> float | None:
    by_origin = window.get('statements_per_min_by_origin') or {}
    return sum(v for origin, v in by_origin.items() if origin != 'events') if by_origin else None


def _ratio(many: float | None, one: float | None) -> float | None:
    return many / one if many is not None and one else None


def report(args: argparse.Namespace, backend: Backend, measured: dict[str, Any]) -> dict[str, Any]:
    every, reached, per_dashboard = measured['latency']
    latency_ms = summary(every)
    pairs = args.changes * args.dashboards
    all_viewers, one = measured['windows']['viewers_all'], measured['windows']['viewers_1']
    ratio = (
        all_viewers['statements_per_min'] / one['statements_per_min'] if one['statements_per_min'] else None
    )
    own = _ratio(_without_events(all_viewers), _without_events(one))
    p95s = [percentile(values, 0.95) for values in per_dashboard if values]
    offsets = [abs(o) for o in measured['clock_offsets_ms']]
    return {
        'backend': backend.name,
        'operators': args.operators,
        'dashboards': args.dashboards,
        'changes': args.changes,
        'rate_per_s': args.rate,
        'latency_ms': latency_ms,
        'pairs': pairs,
        'pairs_missing': pairs - len(every),
        'changes_reaching_all': sum(count == args.dashboards for count in reached),
        'statements': {
            'window_s': args.window_s,
            f'viewers_{args.dashboards}': all_viewers,
            'viewers_1': one,
            'ratio': round(ratio, 3) if ratio is not None else None,
            # without the inbound consumer's statements: the churn's, whose count moves with how the
            # events are batched on a starved machine, not with the viewers
            'ratio_without_events': round(own, 3) if own is not None else None,
        },
        'targets': TARGETS,
        'met': {
            'latency_p95_ms': latency_ms['p95'] is not None
            and latency_ms['p95'] <= TARGETS['latency_p95_ms'],
            'statements_20_over_1_max': ratio is not None and ratio <= TARGETS['statements_20_over_1_max'],
            'statements_without_events_20_over_1_max': own is not None
            and own <= TARGETS['statements_20_over_1_max'],
        },
        'detail': {
            'p95_ms_by_dashboard': {
                'min': round(min(p95s), 2) if p95s else None,
                'max': round(max(p95s), 2) if p95s else None,
            },
            'changes_reaching_none': sum(count == 0 for count in reached),
            'reloads': measured['reloads'],  # dashboards NiceGUI loaded anew after a lost connection
            'open_dashboards_s': measured['open_s'],
            'publish_late_max_s': round(measured['publish_late_s'], 3),
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
    operators, phones = prepare_database(backend, args.borrowers, args.operators)
    amqp_url = prepare_vhost(backend.amqp_url, args.vhost) if backend.amqp_url else None
    app = start_app(backend, amqp_url, APP_VAR_DIR, settings=APP_SETTINGS)
    try:
        measured = asyncio.run(measure(args, app, amqp_url, operators, phones))
    finally:
        app.stop()
    print(json.dumps(report(args, backend, measured), ensure_ascii=False))


if __name__ == '__main__':
    main()
